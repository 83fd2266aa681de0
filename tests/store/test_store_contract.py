"""The store contract, written once and run on every backend (``store_url``: SQLite, PostgreSQL).

Rows are built either bare (``SqlTransaction`` methods, so a test controls every column) or
through ``create_task`` where the orchestration's own shape is what matters.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from tasker.domain.model import TaskRequest
from tasker.domain.states import StepState, TaskState
from tasker.errors import DuplicateTask, PassMispredicted
from tasker.orchestration.claims import claim_steps
from tasker.orchestration.creation import create_task
from tasker.orchestration.results import ResultOutcome, submit_result
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store, Transaction
from tasker.store.sql import FencedResult, LockedTask, PredictedPass, new_uuid
from tasker.templates import load_template_text

NOW = datetime(2026, 1, 6, 12, 0, 0, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=30)
TABLES = {
    "named_tasks",
    "tasks",
    "workflow_steps",
    "workflow_step_edges",
    "task_transitions",
    "workflow_step_transitions",
    "workflow_step_result_audit",
    "dlq_entries",
}

LINEAR = """
name: linear
namespace_name: contract
version: "1.0.0"
steps:
  - name: first
    handler: {callable: contract.first}
  - name: second
    dependencies: [first]
    handler: {callable: contract.second}
  - name: third
    dependencies: [second]
    handler: {callable: contract.third}
"""


@pytest.fixture
def templates(store: Store) -> TemplateCache:
    cache = TemplateCache("test")
    with store.transaction() as tx:
        cache.register(tx, load_template_text(LINEAR, "linear.yaml"))
    return cache


# -- bare rows ---------------------------------------------------------------------------------


def bare_task(tx: Transaction, identity: str = "identity-1", context: object = None) -> str:
    """A task row with its initial ``null -> pending`` transition and no steps."""
    named = tx.upsert_named_task("contract", "bare", "1.0.0", {"name": "bare"}, "strict", NOW)
    task_uuid = new_uuid()
    inserted = tx.insert_task(
        {
            "task_uuid": task_uuid,
            "named_task_uuid": named,
            "namespace": "contract",
            "name": "bare",
            "version": "1.0.0",
            "context": {"n": 1} if context is None else context,
            "identity_hash": identity,
            "initiator": "tests",
            "source_system": "contract",
            "reason": "contract test",
            "tags": ["a", "b"],
            "priority": 0,
            "correlation_id": new_uuid(),
            "parent_correlation_id": None,
        },
        NOW,
    )
    assert inserted
    return task_uuid


def bare_step(
    tx: Transaction, task_uuid: str, name: str, *, retryable: bool = True, max_attempts: int = 3
) -> str:
    """A pending step with its initial transition."""
    step_uuid = new_uuid()
    tx.insert_step(
        {
            "workflow_step_uuid": step_uuid,
            "task_uuid": task_uuid,
            "name": name,
            "template_step_name": name,
            "namespace": "contract",
            "retryable": retryable,
            "max_attempts": max_attempts,
            "inputs": None,
            "priority": 0,
        },
        NOW,
    )
    return step_uuid


def move(
    tx: Transaction, step: str, task: str, frm: StepState, to: StepState, **changes: object
) -> None:
    assert tx.transition_step(step, task, frm, to, "test", NOW, changes=changes) is not None


def ready_names(tx: Transaction, task_uuid: str, now: datetime = NOW) -> set[str]:
    names = {s.workflow_step_uuid: s.name for s in tx.task_steps(task_uuid)}
    return {names[uuid] for uuid, _ in tx.ready_steps(task_uuid, now)}


def claimed_step(tx: Transaction) -> tuple[str, str, str]:
    """A bare step, enqueued and claimed; returns (task_uuid, step_uuid, claim token)."""
    task = bare_task(tx)
    step = bare_step(tx, task, "work")
    move(tx, step, task, StepState.PENDING, StepState.ENQUEUED, enqueued_at=NOW)
    [claim] = claim_steps(
        tx, namespaces=None, limit=5, worker_id="w1", lease_timeout_s=30.0, now=NOW
    )
    assert claim.step_uuid == step
    return task, step, claim.token


# -- compare-and-set transitions -----------------------------------------------------------


def test_task_transition_from_a_state_the_task_has_left_writes_nothing(store: Store) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)
        moved = tx.transition_task(task, TaskState.PENDING, TaskState.INITIALIZING, "start", NOW)
        again = tx.transition_task(task, TaskState.PENDING, TaskState.INITIALIZING, "start", NOW)
        wrong = tx.transition_task(task, TaskState.COMPLETE, TaskState.ERROR, "fail", NOW)
        rows = tx.task_transitions(task)
        record = tx.get_task(task)

    assert (moved, again, wrong) == (True, False, False)
    assert [r.to_state for r in rows] == ["pending", "initializing"]
    assert record is not None
    assert record.state is TaskState.INITIALIZING


def test_step_transition_from_a_state_the_step_has_left_writes_nothing(store: Store) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)
        step = bare_step(tx, task, "only")
        first = tx.transition_step(step, task, StepState.PENDING, StepState.ENQUEUED, "e", NOW)
        second = tx.transition_step(step, task, StepState.PENDING, StepState.ENQUEUED, "e", NOW)
        rows = tx.step_transitions(step)
        record = tx.get_step(step)

    assert first is not None
    assert second is None
    assert [r.to_state for r in rows] == ["pending", "enqueued"]
    assert record is not None
    assert record.state is StepState.ENQUEUED


def test_task_completion_sets_complete_and_completed_at(store: Store) -> None:
    done_at = NOW + timedelta(minutes=5)
    with store.transaction() as tx:
        task = bare_task(tx)
        before = tx.get_task(task)
        tx.transition_task(task, TaskState.PENDING, TaskState.COMPLETE, "done", done_at)
        after = tx.get_task(task)

    assert before is not None
    assert after is not None
    assert (before.complete, before.completed_at) == (False, None)
    assert (after.complete, after.completed_at) == (True, done_at)


# -- transition history --------------------------------------------------------------------


def test_history_has_one_most_recent_row_and_sort_keys_one_to_n(store: Store) -> None:
    task_path = [TaskState.INITIALIZING, TaskState.ENQUEUING_STEPS, TaskState.STEPS_IN_PROCESS]
    step_path = [StepState.ENQUEUED, StepState.IN_PROGRESS, StepState.ENQUEUED_FOR_ORCHESTRATION]
    with store.transaction() as tx:
        task = bare_task(tx)
        step = bare_step(tx, task, "only")
        current_task, current_step = TaskState.PENDING, StepState.PENDING
        for next_task, next_step in zip(task_path, step_path, strict=True):
            assert tx.transition_task(task, current_task, next_task, "e", NOW)
            move(tx, step, task, current_step, next_step)
            current_task, current_step = next_task, next_step
        histories = [tx.task_transitions(task), tx.step_transitions(step)]

    for rows in histories:
        assert [r.sort_key for r in rows] == [1, 2, 3, 4]
        assert [r.most_recent for r in rows] == [False, False, False, True]
        assert [r.from_state for r in rows[1:]] == [r.to_state for r in rows[:-1]]


def test_initial_rows_have_no_from_state(store: Store, templates: TemplateCache) -> None:
    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="linear", namespace="contract"), NOW)
        task_rows = tx.task_transitions(created.task_uuid)
        step_rows = [
            tx.step_transitions(s.workflow_step_uuid) for s in tx.task_steps(created.task_uuid)
        ]

    assert len(step_rows) == 3
    for rows in [task_rows, *step_rows]:
        assert (rows[0].from_state, rows[0].to_state, rows[0].sort_key) == (None, "pending", 1)
        assert all(r.from_state is not None for r in rows[1:])
    assert task_rows[0].metadata["initial_state"] == "pending"
    assert task_rows[0].metadata["from_service"] == "task_initializer"


def test_inserting_a_task_or_step_writes_its_initial_row_and_a_duplicate_writes_none(
    store: Store,
) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)
        step = bare_step(tx, task, "only")
        tx.insert_step(
            {
                "workflow_step_uuid": new_uuid(),
                "task_uuid": task,
                "name": "only",
                "template_step_name": "only",
                "namespace": "contract",
                "retryable": True,
                "max_attempts": 3,
                "inputs": None,
                "priority": 0,
            },
            NOW,
        )
        rows = [tx.task_transitions(task), tx.step_transitions(step)]
        counts = tx.table_counts()

    for [row] in rows:
        assert (row.from_state, row.to_state, row.event) == (None, "pending", "initial")
        assert (row.sort_key, row.most_recent, row.created_at) == (1, True, NOW)
        assert row.metadata == {"event": "initial", "timestamp": NOW.isoformat()}
    assert counts["workflow_steps"] == counts["workflow_step_transitions"] == 1


def test_task_steps_come_back_in_creation_order(store: Store, templates: TemplateCache) -> None:
    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="linear", namespace="contract"), NOW)
        names = [s.name for s in tx.task_steps(created.task_uuid)]
        edges = sorted(tx.task_edges(created.task_uuid))

    assert names == ["first", "second", "third"]
    assert edges == [("first", "second", "provides"), ("second", "third", "provides")]


# -- claims and fencing --------------------------------------------------------------------


def test_claim_candidates_offer_only_enqueued_steps_of_the_asked_namespaces(store: Store) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)
        enqueued = bare_step(tx, task, "enqueued")
        bare_step(tx, task, "pending")
        move(tx, enqueued, task, StepState.PENDING, StepState.ENQUEUED, enqueued_at=NOW)
        any_namespace = tx.claim_candidates(None, 10)
        ours = tx.claim_candidates(["other", "contract"], 10)
        theirs = tx.claim_candidates(["other"], 10)

    assert any_namespace == [(enqueued, task, 0)]
    assert ours == [(enqueued, task, 0)]
    assert theirs == []


def test_writes_under_a_wrong_claim_token_change_nothing(store: Store) -> None:
    with store.transaction() as tx:
        task, step, token = claimed_step(tx)
    lease_end = NOW + LEASE
    with store.transaction() as tx:
        before = (tx.get_step(step), tx.table_counts())
        heartbeat = tx.heartbeat(step, "stale-token", lease_end + timedelta(hours=1))
        checkpoint = tx.save_checkpoint(
            step,
            "stale-token",
            cursor=1,
            items_processed=1,
            accumulated_results=None,
            lease_expires_at=lease_end + timedelta(hours=1),
            now=NOW,
        )
        result = tx.transition_step(
            step,
            task,
            StepState.IN_PROGRESS,
            StepState.ENQUEUED_FOR_ORCHESTRATION,
            "e",
            NOW,
            changes={"results": {"success": True}},
            claim_token="stale-token",
        )
        after = (tx.get_step(step), tx.table_counts())
        still_expiring = tx.expired_leases(lease_end + timedelta(seconds=1), 10)

    assert (heartbeat, checkpoint, result) == (False, False, None)
    assert after == before
    assert still_expiring == [(step, task, token, "w1")]


def test_writes_under_the_current_claim_token_succeed(store: Store) -> None:
    with store.transaction() as tx:
        task, step, token = claimed_step(tx)
    lease_end = NOW + LEASE
    with store.transaction() as tx:
        heartbeat = tx.heartbeat(step, token, lease_end + timedelta(hours=1))
        expiring = tx.expired_leases(lease_end + timedelta(seconds=1), 10)
        result = tx.transition_step(
            step,
            task,
            StepState.IN_PROGRESS,
            StepState.ENQUEUED_FOR_ORCHESTRATION,
            "e",
            NOW,
            changes={"results": {"success": True}, "claim_token": None},
            claim_token=token,
        )
        record = tx.get_step(step)

    assert heartbeat
    assert expiring == []
    assert result is not None
    assert record is not None
    assert record.results == {"success": True}


def test_a_result_under_a_stale_claim_is_refused_and_writes_nothing(
    store: Store, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="linear", namespace="contract"), NOW)
        [claim] = claim_steps(
            tx, namespaces=None, limit=5, worker_id="w1", lease_timeout_s=30.0, now=NOW
        )
    stale = dataclasses.replace(claim, token=new_uuid())
    with store.transaction() as tx:
        before = tx.table_counts()
        outcome = submit_result(tx, templates, stale, {"success": True, "result": {}}, NOW)
        after = tx.table_counts()
        step = tx.get_step(claim.step_uuid)

    assert outcome is ResultOutcome.REFUSED
    assert after == before
    assert step is not None
    assert step.state is StepState.IN_PROGRESS


# -- checkpoints ---------------------------------------------------------------------------


def ts_text(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_checkpoint_replaces_cursor_and_results_and_appends_history(store: Store) -> None:
    with store.transaction() as tx:
        _, step, token = claimed_step(tx)
        for i in range(2):
            assert tx.save_checkpoint(
                step,
                token,
                cursor={"page": i},
                items_processed=10 * (i + 1),
                accumulated_results={"total": i},
                lease_expires_at=NOW + LEASE,
                now=NOW + timedelta(seconds=i),
            )
        record = tx.get_step(step)

    assert record is not None
    assert record.checkpoint == {
        "cursor": {"page": 1},
        "items_processed": 20,
        "timestamp": ts_text(NOW + timedelta(seconds=1)),
        "accumulated_results": {"total": 1},
        "history": [
            {"cursor": {"page": 0}, "timestamp": ts_text(NOW)},
            {"cursor": {"page": 1}, "timestamp": ts_text(NOW + timedelta(seconds=1))},
        ],
    }


def test_checkpoint_history_keeps_the_last_100_entries(store: Store) -> None:
    with store.transaction() as tx:
        _, step, token = claimed_step(tx)
        for i in range(105):
            assert tx.save_checkpoint(
                step,
                token,
                cursor=i,
                items_processed=i,
                accumulated_results=None,
                lease_expires_at=NOW + LEASE,
                now=NOW + timedelta(seconds=i),
            )
        record = tx.get_step(step)

    assert record is not None
    assert record.checkpoint is not None
    assert [entry["cursor"] for entry in record.checkpoint["history"]] == list(range(5, 105))
    assert record.checkpoint["cursor"] == 104


# -- readiness -----------------------------------------------------------------------------


def test_step_is_ready_only_when_every_parent_is_complete_or_resolved(store: Store) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)
        p1, p2 = bare_step(tx, task, "p1"), bare_step(tx, task, "p2")
        child = bare_step(tx, task, "child")
        tx.insert_edge(task, p1, child, "provides", NOW)
        tx.insert_edge(task, p2, child, "provides", NOW)
        seen = [ready_names(tx, task)]
        move(tx, p1, task, StepState.PENDING, StepState.COMPLETE, processed=True)
        move(tx, p2, task, StepState.PENDING, StepState.ERROR)
        seen.append(ready_names(tx, task))
        move(tx, p2, task, StepState.ERROR, StepState.RESOLVED_MANUALLY, processed=True)
        seen.append(ready_names(tx, task))

    assert seen == [{"p1", "p2"}, set(), {"child"}]


def test_backoff_hides_a_step_until_next_retry_at(store: Store) -> None:
    retry_at = NOW + timedelta(seconds=10)
    with store.transaction() as tx:
        task = bare_task(tx)
        step = bare_step(tx, task, "s")
        move(
            tx,
            step,
            task,
            StepState.PENDING,
            StepState.WAITING_FOR_RETRY,
            attempts_delta=1,
            next_retry_at=retry_at,
        )
        early = ready_names(tx, task, retry_at - timedelta(microseconds=1))
        due = tx.ready_steps(task, retry_at)

    assert early == set()
    assert due == [(step, StepState.WAITING_FOR_RETRY)]


def test_retry_eligibility_decides_readiness(store: Store) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)
        # A first run is allowed even for a non-retryable step; a second one is not.
        steps = {
            name: bare_step(tx, task, name, retryable="not_retryable" not in name, max_attempts=3)
            for name in ("fresh", "fresh_not_retryable", "retry", "exhausted", "not_retryable")
        }
        for name, attempts in (("retry", 2), ("exhausted", 3), ("not_retryable", 1)):
            move(
                tx,
                steps[name],
                task,
                StepState.PENDING,
                StepState.WAITING_FOR_RETRY,
                attempts_delta=attempts,
            )
        for name, change in (("in_process", "in_process"), ("processed", "processed")):
            steps[name] = bare_step(tx, task, name)
            move(tx, steps[name], task, StepState.PENDING, StepState.PENDING, **{change: True})
        steps["enqueued"] = bare_step(tx, task, "enqueued")
        move(tx, steps["enqueued"], task, StepState.PENDING, StepState.ENQUEUED)
        ready = ready_names(tx, task)

    assert ready == {"fresh", "fresh_not_retryable", "retry"}


# -- identity, DLQ, counts -----------------------------------------------------------------


def test_insert_task_refuses_a_second_task_with_the_same_identity_hash(store: Store) -> None:
    with store.transaction() as tx:
        first = bare_task(tx, identity="same")
        named = tx.upsert_named_task("contract", "bare", "1.0.0", {}, "strict", NOW)
        second = tx.insert_task(
            {
                "task_uuid": new_uuid(),
                "named_task_uuid": named,
                "namespace": "contract",
                "name": "bare",
                "version": "1.0.0",
                "context": {},
                "identity_hash": "same",
                "initiator": "t",
                "source_system": "t",
                "reason": "t",
                "tags": [],
                "priority": 0,
                "correlation_id": new_uuid(),
                "parent_correlation_id": None,
            },
            NOW,
        )
        holder = tx.task_by_identity("same")
        tasks = tx.table_counts()["tasks"]

    assert second is False
    assert holder == first
    assert tasks == 1


def test_duplicate_create_task_raises_with_the_existing_uuid_and_writes_nothing(
    store: Store, templates: TemplateCache
) -> None:
    request = TaskRequest(name="linear", namespace="contract", context={"order": 7})
    with store.transaction() as tx:
        created = create_task(tx, templates, request, NOW)
    with store.read() as tx:
        before = tx.table_counts()

    with pytest.raises(DuplicateTask) as raised, store.transaction() as tx:
        create_task(tx, templates, request, NOW)

    with store.read() as tx:
        after = tx.table_counts()
    assert raised.value.task_uuid == created.task_uuid
    assert after == before


def test_dlq_holds_one_pending_entry_per_task(store: Store) -> None:
    with store.transaction() as tx:
        task, other = bare_task(tx, "one"), bare_task(tx, "two")
        results = [
            tx.insert_dlq_entry(t, "blocked_by_failures", "max_retries_exceeded", {}, {}, NOW)
            for t in (task, task, other)
        ]
        entries = tx.table_counts()["dlq_entries"]

    assert results == [True, False, True]
    assert entries == 2


def test_table_counts_name_every_table_and_count_its_rows(
    store: Store, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        empty = tx.table_counts()
        created = create_task(tx, templates, TaskRequest(name="linear", namespace="contract"), NOW)
        counts = tx.table_counts()
        steps = tx.task_steps(created.task_uuid)
        step_rows = sum(len(tx.step_transitions(s.workflow_step_uuid)) for s in steps)
        task_rows = len(tx.task_transitions(created.task_uuid))

    assert set(empty) == TABLES
    assert empty == dict.fromkeys(TABLES, 0) | {"named_tasks": 1}
    assert counts == {
        "named_tasks": 1,
        "tasks": 1,
        "workflow_steps": 3,
        "workflow_step_edges": 2,
        "task_transitions": task_rows,
        "workflow_step_transitions": step_rows,
        "workflow_step_result_audit": 0,
        "dlq_entries": 0,
    }


# -- transactions and values ---------------------------------------------------------------


def test_an_exception_inside_a_transaction_writes_nothing(store: Store) -> None:
    def write_then_fail() -> None:
        with store.transaction() as tx:
            bare_task(tx)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        write_then_fail()

    with store.read() as tx:
        counts = tx.table_counts()
    assert counts == dict.fromkeys(TABLES, 0)


def test_values_round_trip_unchanged(store: Store) -> None:
    context = {"name": "Zoë ✓", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    with store.transaction() as tx:
        task = bare_task(tx, context=context)
    with store.read() as tx:
        record = tx.get_task(task)

    assert record is not None
    assert record.context == context
    assert record.tags == ["a", "b"]
    assert record.created_at == NOW
    assert record.created_at.utcoffset() == timedelta(0)
    assert record.completed_at is None


def test_registering_a_template_again_replaces_it_under_the_same_uuid(store: Store) -> None:
    with store.transaction() as tx:
        first = tx.upsert_named_task("contract", "t", "1.0.0", {"v": 1}, "strict", NOW)
        second = tx.upsert_named_task("contract", "t", "1.0.0", {"v": 2}, "strict", NOW)
        found = tx.find_named_task("contract", "t", "1.0.0")

    assert second == first
    assert found == (first, {"v": 2})


def test_stats_count_statements_and_only_committed_write_transactions(store: Store) -> None:
    before = (store.stats.statements, store.stats.commits)
    with store.transaction() as tx:
        tx.find_named_task("contract", "t", "1.0.0")
        tx.list_named_tasks()
    with store.read() as tx:
        tx.list_named_tasks()

    def fail() -> None:
        with store.transaction() as tx:
            tx.list_named_tasks()
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        fail()

    assert (store.stats.statements, store.stats.commits) == (before[0] + 4, before[1] + 1)


# -- predictions (ADR 0023): what the store checks, on every backend --------------------------


def _predicted_first_step(
    store: Store, templates: TemplateCache, ready_names_predicted: tuple[str, ...]
) -> tuple[str, str]:
    """Store the claimed first step's success predicting ``ready_names_predicted`` ready;
    returns (task_uuid, step_uuid). Raises PassMispredicted if the prediction is wrong."""
    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="linear", namespace="contract"), NOW)
        [claim] = claim_steps(
            tx, namespaces=None, limit=5, worker_id="w1", lease_timeout_s=30.0, now=NOW
        )
    with store.read() as tx:
        steps = {s.name: s.workflow_step_uuid for s in tx.task_steps(created.task_uuid)}
        task = tx.get_task(created.task_uuid)
    assert task is not None
    predicted = PredictedPass(
        LockedTask(task.task_uuid, TaskState.STEPS_IN_PROCESS, "contract", task.named_task_uuid),
        claim.step_uuid,
        tuple(steps[name] for name in ready_names_predicted),
    )
    audit = {
        "step_uuid": claim.step_uuid,
        "task_uuid": task.task_uuid,
        "worker_uuid": "w1",
        "correlation_id": None,
        "success": True,
        "execution_time_ms": 1.0,
        "attempt": 1,
        "now": NOW,
    }
    with store.transaction() as tx:
        locked = tx.lock_and_complete_predicted(
            [FencedResult(claim.step_uuid, claim.token, {"success": True}, NOW)],
            [audit],
            StepState.IN_PROGRESS,
            (StepState.ENQUEUED_FOR_ORCHESTRATION, "enqueue_for_orchestration"),
            StepState.COMPLETE,
            "complete",
            NOW,
            [predicted],
        )
        assert locked == {task.task_uuid: predicted.task}
    return task.task_uuid, claim.step_uuid


def test_a_prediction_that_holds_stores_the_result(store: Store, templates: TemplateCache) -> None:
    task_uuid, step_uuid = _predicted_first_step(store, templates, ("second",))
    with store.read() as tx:
        step = tx.get_step(step_uuid)
        assert step is not None
        assert step.state is StepState.COMPLETE
        assert len(tx.step_audit(task_uuid, step_uuid)) == 1


def test_a_prediction_that_does_not_hold_fails_and_writes_nothing(
    store: Store, templates: TemplateCache
) -> None:
    """Predicting no ready step where ``second`` becomes ready: the transaction fails with
    ``PassMispredicted`` (on PostgreSQL at COMMIT, in SQL) and the result is not stored."""
    with store.read() as tx:
        before = tx.table_counts()
    with pytest.raises(PassMispredicted):
        _predicted_first_step(store, templates, ())
    with store.read() as tx:
        after = tx.table_counts()
        (task_uuid,) = tx.tasks_in_states([TaskState.STEPS_IN_PROCESS], NOW + LEASE, 10)
        states = {s.name: s.state for s in tx.task_steps(task_uuid)}
    # The task and its claim were committed before the prediction; the result was not.
    assert after["workflow_step_result_audit"] == before["workflow_step_result_audit"]
    assert states == {
        "first": StepState.IN_PROGRESS,
        "second": StepState.PENDING,
        "third": StepState.PENDING,
    }


def test_a_creation_predicted_new_fails_on_an_existing_identity_and_writes_nothing(
    store: Store, templates: TemplateCache
) -> None:
    request = TaskRequest(name="linear", namespace="contract", context={"n": 1})
    with store.transaction() as tx:
        create_task(tx, templates, request, NOW, predict=True)
    with store.read() as tx:
        before = tx.table_counts()
    with pytest.raises(PassMispredicted), store.transaction() as tx:
        create_task(tx, templates, request, NOW, predict=True)
    with pytest.raises(DuplicateTask), store.transaction() as tx:
        create_task(tx, templates, request, NOW)
    with store.read() as tx:
        assert tx.table_counts() == before
