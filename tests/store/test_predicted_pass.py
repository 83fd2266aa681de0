"""Predicted passes (ADR 0023): a plain success whose children have it as their only parent
is recorded with the task's next pass decided in advance, and the premises checked in SQL.

The property: for any DAG and any order of successes, retryable and permanent failures, a
task driven with predicted passes writes exactly the rows (step and task transitions, their
metadata, the steps' final state) of the same task driven without them. A prediction that does
not hold (another step failed, a retry came due, the claim was superseded) fails its
transaction with ``PassMispredicted`` and is redone the ordinary way, as the worker does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasker.domain.model import Claim, StepRecord, TaskRequest
from tasker.domain.states import StepState, TaskState
from tasker.domain.template import TaskTemplate
from tasker.errors import PassMispredicted
from tasker.orchestration.claims import claim_step_rows
from tasker.orchestration.creation import create_task
from tasker.orchestration.lifecycle import evaluate_task
from tasker.orchestration.results import ResultGroup, ResultOutcome, sweep_expired_leases
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store
from tasker.store.postgres import PostgresStore
from tasker.store.postgres.transaction import PostgresTransaction
from tasker.templates import load_template_text

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
SERIAL = itertools.count()
KINDS = ("success", "success", "success", "retryable", "permanent")


@pytest.fixture(scope="module")
def pg_store(pg_database_factory: Any) -> Iterator[PostgresStore]:
    """One database for the module: each example's tasks are new rows of their own."""
    opened = PostgresStore(pg_database_factory.dsn(pg_database_factory.create()))
    try:
        yield opened
    finally:
        opened.close()


def pg(tx: Any) -> PostgresTransaction:
    assert isinstance(tx, PostgresTransaction)
    return tx


def template_text(name: str, parents: list[list[int]], namespace: str = "predicted") -> str:
    lines = [f"name: {name}", f"namespace_name: {namespace}", 'version: "1.0.0"', "steps:"]
    for i, deps in enumerate(parents):
        dependencies = ", ".join(f"s{d}" for d in deps)
        lines.append(
            f"  - {{name: s{i}, dependencies: [{dependencies}], handler: {{callable: p.step}},"
            " retry: {max_attempts: 2, backoff: exponential, backoff_base_ms: 1000}}"
        )
    return "\n".join(lines) + "\n"


@st.composite
def dags(draw: st.DrawFn) -> list[list[int]]:
    """Each step's parents among the steps before it (so every draw is acyclic)."""
    size = draw(st.integers(min_value=2, max_value=6))
    return [
        sorted(draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=2))) if i else []
        for i in range(size)
    ]


def new_task(
    store: Store, templates: TemplateCache, name: str, namespace: str = "predicted"
) -> str:
    request = TaskRequest(name=name, namespace=namespace, context={"n": next(SERIAL)})
    with store.transaction() as tx:
        return create_task(tx, templates, request, NOW).task_uuid


def document(kind: str, name: str) -> dict[str, Any]:
    if kind == "success":
        return {"success": True, "result": {"name": name}, "metadata": {}}
    return {
        "success": False,
        "result": {},
        "error": {"message": kind, "error_type": kind, "retryable": kind == "retryable"},
        "metadata": {"retryable": kind == "retryable"},
    }


def record_once(
    store: Store,
    templates: TemplateCache,
    template: TaskTemplate,
    claimed: tuple[Claim, StepRecord],
    kind: str,
    now: datetime,
    *,
    predict: bool,
) -> ResultOutcome:
    claim, step = claimed
    group = ResultGroup(predict=predict)
    with store.transaction() as tx:
        group.submit(
            templates,
            claim,
            document(kind, step.name),
            now,
            jitter=False,
            step_template=template.step(step.template_step_name),
        )
        (outcome,) = group.finish(tx, now)
    return outcome


def record(
    store: Store,
    templates: TemplateCache,
    template: TaskTemplate,
    claimed: tuple[Claim, StepRecord],
    kind: str,
    now: datetime,
    *,
    predict: bool,
) -> tuple[ResultOutcome, bool]:
    """Record one result as the worker does: predicted, and redone ordinarily if mispredicted.
    Returns the outcome and whether a prediction failed."""
    try:
        return record_once(store, templates, template, claimed, kind, now, predict=predict), False
    except PassMispredicted:
        return record_once(store, templates, template, claimed, kind, now, predict=False), True


def claim_all(
    store: Store, template: TaskTemplate, now: datetime
) -> list[tuple[Claim, StepRecord]]:
    """Every enqueued step of the template's namespace, claimed, in name order."""
    with store.transaction() as tx:
        running = claim_step_rows(
            tx,
            namespaces=[template.namespace_name],
            limit=20,
            worker_id="w",
            lease_timeout_s=3600.0,
            now=now,
        )
    return sorted(running, key=lambda claimed: claimed[1].name)


def drive(
    store: Store,
    templates: TemplateCache,
    template: TaskTemplate,
    script: list[tuple[int, str]],
    predict: bool,
) -> tuple[str, int]:
    """Run one task of ``template`` by ``script``: each entry picks a running step (by index
    among them, sorted by name) and what its run returns; the clock moves a minute per entry,
    so retries come due. Returns the task and how many predictions failed."""
    task_uuid = new_task(store, templates, template.name, template.namespace_name)
    running: list[tuple[Claim, StepRecord]] = []
    mispredicted = 0
    for turn, (pick, kind) in enumerate(script):
        now = NOW + timedelta(minutes=turn)
        if not running:
            running = claim_all(store, template, now)
        if not running:
            with store.transaction() as tx:
                evaluate_task(tx, task_uuid, now)  # as maintenance does: due retries enqueued
            running = claim_all(store, template, now)
        if not running:
            break
        claimed = running.pop(pick % len(running))
        outcome, failed = record(store, templates, template, claimed, kind, now, predict=predict)
        assert outcome is ResultOutcome.APPLIED
        mispredicted += failed
    return task_uuid, mispredicted


def history(store: Store, task_uuid: str) -> dict[str, Any]:
    """Everything the task's rows say, with uuids replaced by step names."""
    with store.read() as tx:
        steps = tx.task_steps(task_uuid)
        names = {s.workflow_step_uuid: s.name for s in steps}

        def plain(metadata: dict[str, Any]) -> dict[str, Any]:
            out = dict(metadata)
            if "step_uuids" in out:
                out["step_uuids"] = [names[u] for u in out["step_uuids"]]
            return out

        task = tx.get_task(task_uuid)
        assert task is not None
        return {
            "task": (
                task.state,
                [
                    (t.from_state, t.to_state, t.event, t.sort_key, plain(t.metadata))
                    for t in tx.task_transitions(task_uuid)
                ],
            ),
            "steps": {
                s.name: (
                    s.state,
                    s.attempts,
                    s.results,
                    [
                        (t.from_state, t.to_state, t.event, t.sort_key, plain(t.metadata))
                        for t in tx.step_transitions(s.workflow_step_uuid)
                    ],
                )
                for s in steps
            },
        }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    parents=dags(),
    script=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.sampled_from(KINDS)),
        min_size=3,
        max_size=14,
    ),
)
def test_a_predicted_pass_writes_what_the_ordinary_pass_writes(
    pg_store: PostgresStore, parents: list[list[int]], script: list[tuple[int, str]]
) -> None:
    # Each side in a namespace of its own, so that neither claims the other's steps (nor
    # those earlier examples left enqueued: the database is the module's).
    serial = next(SERIAL)
    templates = TemplateCache("test")
    sides = [
        load_template_text(template_text("dag", parents, f"ns{serial}{side}"), "dag.yaml")
        for side in "ab"
    ]
    with pg_store.transaction() as tx:
        for template in sides:
            templates.register(tx, template)

    predicted, _ = drive(pg_store, templates, sides[0], script, predict=True)
    ordinary, none_failed = drive(pg_store, templates, sides[1], script, predict=False)

    assert none_failed == 0
    assert history(pg_store, predicted) == history(pg_store, ordinary)


def chain_store(store: PostgresStore, namespace: str) -> tuple[TemplateCache, TaskTemplate]:
    template = load_template_text(template_text("chain", [[], [0], [1]], namespace), "chain.yaml")
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, template)
    return templates, template


def test_a_chain_link_is_predicted_and_held_in_one_round_trip(pg_store: PostgresStore) -> None:
    """The result, the child's enqueue, the task's pass and the premises' check are all held:
    nothing is sent before COMMIT (one round trip), and the chain moves on."""
    templates, template = chain_store(pg_store, "held")
    task_uuid = new_task(pg_store, templates, "chain", "held")
    with pg_store.transaction() as tx:
        ((claim, step),) = claim_step_rows(
            tx, namespaces=["held"], limit=5, worker_id="w", lease_timeout_s=60.0, now=NOW
        )
    assert claim.successors is not None
    assert [parents for _, parents in claim.successors.children] == [1]

    group = ResultGroup()
    with pg_store.transaction() as tx:
        group.submit(
            templates,
            claim,
            document("success", step.name),
            NOW,
            jitter=False,
            step_template=template.step(step.template_step_name),
        )
        assert group.finish(tx, NOW) == [ResultOutcome.APPLIED]
        held = [sql for sql, _, _ in pg(tx).connection._held]
        assert len(held) == 6  # BEGIN, lock, result, check, the child's enqueue, the task's move
        assert "tasker_mispredicted" in held[3]

    with pg_store.read() as tx:
        states = {s.name: s.state for s in tx.task_steps(task_uuid)}
        task = tx.get_task(task_uuid)
    assert states == {"s0": StepState.COMPLETE, "s1": StepState.ENQUEUED, "s2": StepState.PENDING}
    assert task is not None
    assert task.state is TaskState.STEPS_IN_PROCESS


def test_a_prediction_under_a_superseded_claim_fails_and_the_result_is_refused(
    pg_store: PostgresStore,
) -> None:
    """The lease expired and was swept before the result came: the predicted pass fails its
    premise (its step is not the one this transaction stored), nothing of it is written, and
    the ordinary redo refuses the result."""
    templates, template = chain_store(pg_store, "superseded")
    task_uuid = new_task(pg_store, templates, "chain", "superseded")
    with pg_store.transaction() as tx:
        (claimed,) = claim_step_rows(
            tx, namespaces=["superseded"], limit=5, worker_id="w", lease_timeout_s=1.0, now=NOW
        )
    later = NOW + timedelta(seconds=5)
    with pg_store.transaction() as tx:
        assert sweep_expired_leases(tx, templates, later) == 1
    before = history(pg_store, task_uuid)

    with pytest.raises(PassMispredicted, match="did not hold"):
        record_once(pg_store, templates, template, claimed, "success", later, predict=True)
    assert history(pg_store, task_uuid) == before
    redone = record(pg_store, templates, template, claimed, "success", later, predict=True)
    assert redone == (ResultOutcome.REFUSED, True)
    assert history(pg_store, task_uuid) == before


def test_a_prediction_fails_when_another_step_of_the_task_failed(pg_store: PostgresStore) -> None:
    """Two branches: one fails for good, then the other succeeds. Its child has no other
    parent, but the task is blocked by the failure: the prediction fails, and the ordinary
    pass gives the task up instead of enqueueing the child."""
    template = load_template_text(template_text("fork", [[], [0], [0], [2]], "fork"), "fork.yaml")
    templates = TemplateCache("test")
    with pg_store.transaction() as tx:
        templates.register(tx, template)
    task_uuid = new_task(pg_store, templates, "fork", "fork")
    with pg_store.transaction() as tx:
        (root,) = claim_step_rows(
            tx, namespaces=["fork"], limit=5, worker_id="w", lease_timeout_s=60.0, now=NOW
        )
    assert record(pg_store, templates, template, root, "success", NOW, predict=True) == (
        ResultOutcome.APPLIED,
        False,
    )
    with pg_store.transaction() as tx:
        branches = sorted(
            claim_step_rows(
                tx, namespaces=["fork"], limit=5, worker_id="w", lease_timeout_s=60.0, now=NOW
            ),
            key=lambda claimed: claimed[1].name,
        )
    failing, succeeding = branches
    assert record(pg_store, templates, template, failing, "permanent", NOW, predict=True)[0] is (
        ResultOutcome.APPLIED
    )
    assert record(pg_store, templates, template, succeeding, "success", NOW, predict=True) == (
        ResultOutcome.APPLIED,
        True,
    )

    with pg_store.read() as tx:
        states = {s.name: s.state for s in tx.task_steps(task_uuid)}
        task = tx.get_task(task_uuid)
    assert states == {
        "s0": StepState.COMPLETE,
        "s1": StepState.ERROR,
        "s2": StepState.COMPLETE,
        "s3": StepState.PENDING,
    }
    assert task is not None
    assert task.state is TaskState.ERROR


def test_every_link_of_a_chain_and_its_last_step_are_predicted(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain run to the end: every result is recorded with its pass predicted (the last
    one's completes the task), and none fails."""
    predicted: list[int] = []
    store_predicted = ResultGroup._store_predicted

    def counting(group: ResultGroup, *args: Any, **kwargs: Any) -> list[ResultOutcome]:
        predicted.append(1)
        return store_predicted(group, *args, **kwargs)

    monkeypatch.setattr(ResultGroup, "_store_predicted", counting)
    templates, template = chain_store(pg_store, "whole")
    task_uuid, mispredicted = drive(
        pg_store, templates, template, [(0, "success")] * 3, predict=True
    )

    assert (len(predicted), mispredicted) == (3, 0)
    with pg_store.read() as tx:
        task = tx.get_task(task_uuid)
        states = {s.name: s.state for s in tx.task_steps(task_uuid)}
    assert task is not None
    assert task.state is TaskState.COMPLETE
    assert set(states.values()) == {StepState.COMPLETE}


def test_a_creation_predicted_new_is_sent_with_its_commit_and_a_duplicate_fails_it(
    pg_store: PostgresStore,
) -> None:
    """Creating a task predicted new holds the task, its steps and edges and the check that
    every task was inserted: nothing reaches the server before COMMIT. A request whose
    identity exists fails that check, and nothing of it is written."""
    templates, _ = chain_store(pg_store, "created")
    request = TaskRequest(name="chain", namespace="created", context={"n": next(SERIAL)})
    with pg_store.transaction() as tx:
        created = create_task(tx, templates, request, NOW, predict=True)
        assert not pg(tx).connection.in_transaction()  # not a statement sent yet
        held = [sql for sql, _, _ in pg(tx).connection._held]
        assert "tasker_mispredicted" in held[2]  # BEGIN, the task, its check, steps, edges
    with pg_store.read() as tx:
        task, steps = tx.task_with_steps(created.task_uuid)
    with pg_store.read() as tx:
        counts_before = tx.table_counts()
    assert task is not None
    assert [s.state for s in steps] == [StepState.ENQUEUED, StepState.PENDING, StepState.PENDING]

    with (
        pytest.raises(PassMispredicted, match="identity that exists"),
        pg_store.transaction() as tx,
    ):
        create_task(tx, templates, request, NOW, predict=True)
    with pg_store.read() as tx:
        assert tx.table_counts() == counts_before
