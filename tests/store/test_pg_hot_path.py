"""What the PostgreSQL store does to keep a step's transaction short: the claim and its
handler's ancestor results in one statement, and statements nobody reads held back until the
next one that is read (docs/performance.md). Outcomes are compared with the plain reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from tasker.domain.model import Claim, StepRecord, TaskRequest
from tasker.domain.states import StepState, TaskState
from tasker.errors import StoreError
from tasker.orchestration.claims import claim_step_rows
from tasker.orchestration.creation import create_task
from tasker.orchestration.results import ResultGroup, ResultOutcome, submit_result
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store
from tasker.store.postgres import PostgresStore
from tasker.store.sql import FencedResult, SqlTransaction
from tasker.templates import load_template_text

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
DIAMOND = """
name: diamond
namespace_name: hot
version: "1.0.0"
steps:
  - {name: top, handler: {callable: hot.step}}
  - {name: left, dependencies: [top], handler: {callable: hot.step}}
  - {name: right, dependencies: [top], handler: {callable: hot.step}}
  - {name: bottom, dependencies: [left, right], handler: {callable: hot.step}}
"""


@pytest.fixture
def pg_store(fresh_pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(fresh_pg_dsn)
    try:
        yield opened
    finally:
        opened.close()


TEMPLATE = load_template_text(DIAMOND, "diamond.yaml")


def templates_of(store: Store) -> TemplateCache:
    cache = TemplateCache("test")
    with store.transaction() as tx:
        cache.register(tx, TEMPLATE)
    return cache


def claim(
    tx: SqlTransaction, limit: int, namespaces: list[str] | None = None
) -> list[tuple[Claim, StepRecord]]:
    return claim_step_rows(
        tx, namespaces=namespaces, limit=limit, worker_id="w1", lease_timeout_s=30.0, now=NOW
    )


def succeed(store: Store, templates: TemplateCache, claimed: tuple[Claim, StepRecord]) -> None:
    claim, step = claimed
    document = {"success": True, "result": {"name": step.name}, "metadata": {}}
    with store.transaction() as tx:
        outcome = submit_result(
            tx,
            templates,
            claim,
            document,
            NOW,
            jitter=False,
            step_template=TEMPLATE.step(step.template_step_name),
        )
    assert outcome is ResultOutcome.APPLIED


@pytest.mark.postgres
def test_one_statement_claims_several_steps_each_under_its_own_token_with_its_ancestors(
    pg_store: PostgresStore,
) -> None:
    store = pg_store
    templates = templates_of(store)
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="diamond", namespace="hot"), NOW)
    with store.transaction() as tx:
        (top,) = claim(tx, 4)
    succeed(store, templates, top)

    with store.transaction() as tx:
        assert claim(tx, 4, ["elsewhere"]) == []
        before = store.stats.statements
        middle = claim(tx, 4, ["hot"])
        claimed_in = store.stats.statements - before
        before = store.stats.statements
        prefetched = tx.ancestor_results_of([c.step_uuid for c, _ in middle])
        read_for_ancestors = store.stats.statements - before

    assert (claimed_in, read_for_ancestors) == (1, 0)
    assert sorted(step.name for _, step in middle) == ["left", "right"]
    assert len({c.token for c, _ in middle}) == 2
    with store.read() as tx:
        for c, step in middle:
            assert (c.attempts_before, step.attempts, step.state) == (0, 1, StepState.IN_PROGRESS)
            row = tx.get_step(c.step_uuid)
            assert row is not None
            assert (row.state, row.attempts) == (StepState.IN_PROGRESS, 1)
            assert [(t.from_state, t.to_state) for t in tx.step_transitions(c.step_uuid)] == [
                (None, "pending"),
                ("pending", "enqueued"),
                ("enqueued", "in_progress"),
            ]
            assert list(prefetched[c.step_uuid]) == ["top"]
            assert prefetched[c.step_uuid] == SqlTransaction.ancestor_results(tx, c.step_uuid)

    for claimed in middle:
        succeed(store, templates, claimed)
    with store.transaction() as tx:
        ((_, bottom),) = claim(tx, 4)
        ancestors = tx.ancestor_results(bottom.workflow_step_uuid)
    with store.read() as tx:
        assert ancestors == SqlTransaction.ancestor_results(tx, bottom.workflow_step_uuid)
    assert list(ancestors) == ["top", "left", "right"]
    assert ancestors["left"]["result"] == {"name": "left"}


@pytest.mark.postgres
def test_a_claim_skips_steps_another_transaction_holds_and_takes_the_next(
    pg_store: PostgresStore,
) -> None:
    store = pg_store
    templates = templates_of(store)
    for n in range(3):
        with store.transaction() as tx:
            create_task(
                tx, templates, TaskRequest(name="diamond", namespace="hot", context={"n": n}), NOW
            )
    with store.transaction() as holder:
        held = claim(holder, 1)
        with store.transaction() as other:
            taken = claim(other, 4)

    assert len(held) == 1
    assert len(taken) == 2
    assert held[0][0].step_uuid not in {c.step_uuid for c, _ in taken}


def test_a_group_stores_its_plain_successes_audits_them_and_refuses_a_superseded_claim(
    store: Store,
) -> None:
    """Both backends: the results of a group's plain successes are stored and audited
    together (on PostgreSQL in one round trip with the tasks' locks and steps); a result under
    a superseded claim is refused and leaves no trace; the tasks move on."""
    templates = templates_of(store)
    for n in range(2):
        with store.transaction() as tx:
            create_task(
                tx, templates, TaskRequest(name="diamond", namespace="hot", context={"n": n}), NOW
            )
    with store.transaction() as tx:
        (first, _), (second, _) = claim(tx, 2)
    stale = Claim(
        second.task_uuid,
        second.step_uuid,
        "not-the-token",
        second.worker_id,
        second.attempts_before,
        second.lease_expires_at,
    )
    top = TEMPLATE.step("top")
    group = ResultGroup()
    with store.transaction() as tx:
        for c in (first, stale):
            group.submit(
                templates,
                c,
                {"success": True, "result": {"n": 1}, "metadata": {}},
                NOW,
                jitter=False,
                correlation_id="corr",
                step_template=top,
            )
        outcomes = group.finish(tx, NOW)

    assert outcomes == [ResultOutcome.APPLIED, ResultOutcome.REFUSED]
    with store.read() as tx:
        audit = tx.step_audit(first.task_uuid, first.step_uuid)
        assert [
            (a["to_state"], a["success"], a["correlation_id"], a["attempt"]) for a in audit
        ] == [("enqueued_for_orchestration", True, "corr", 1)]
        assert tx.step_audit(second.task_uuid, second.step_uuid) == []
        stored = tx.get_step(first.step_uuid)
        untouched = tx.get_step(second.step_uuid)
        children = {s.name: s.state for s in tx.task_steps(first.task_uuid)}
        task = tx.get_task(first.task_uuid)
    assert stored is not None
    assert untouched is not None
    assert task is not None
    assert (stored.state, stored.results) == (
        StepState.COMPLETE,
        {"success": True, "result": {"n": 1}, "metadata": {}},
    )
    assert (untouched.state, untouched.results) == (StepState.IN_PROGRESS, None)
    assert children == {
        "top": StepState.COMPLETE,
        "left": StepState.ENQUEUED,
        "right": StepState.ENQUEUED,
        "bottom": StepState.PENDING,
    }
    assert task.state is TaskState.STEPS_IN_PROCESS


@pytest.mark.postgres
def test_enqueueing_steps_read_ready_under_the_task_lock_is_not_waited_for_but_checked(
    pg_store: PostgresStore,
) -> None:
    """The ready steps a pass enqueues cannot have moved under the task's lock, so their
    UPDATE is sent with the next statement; if one had moved after all (a bug), the
    transaction fails instead of committing without it."""
    store = pg_store
    templates = templates_of(store)
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="diamond", namespace="hot"), NOW)
    with store.transaction() as tx:
        ((top, _),) = claim(tx, 1)
    with store.transaction() as tx:
        tx.complete_fenced_steps(
            [FencedResult(top.step_uuid, top.token, {"success": True}, NOW)],
            StepState.IN_PROGRESS,
            (StepState.ENQUEUED_FOR_ORCHESTRATION, "enqueue_for_orchestration"),
            StepState.COMPLETE,
            "complete",
        )

    def enqueue_after_a_ready_step_moved() -> None:
        with store.transaction() as tx:
            assert tx.lock_task(top.task_uuid) is not None
            ready, _ = tx.step_overview(top.task_uuid, NOW)
            assert len(ready) == 2
            # Behind orchestration's back, as only a bug could:
            tx.execute(
                "UPDATE workflow_steps SET state = 'cancelled' WHERE workflow_step_uuid = %(s)s",
                {"s": ready[0][0]},
            )
            before = store.stats.statements
            moved = tx.enqueue_steps(ready, StepState.ENQUEUED, "enqueue", NOW)
            assert moved == {step_uuid for step_uuid, _ in ready}
            assert store.stats.statements == before + 1

    with pytest.raises(StoreError, match="were still in those states") as raised:
        enqueue_after_a_ready_step_moved()

    assert type(raised.value) is StoreError
    with store.read() as tx:
        states = sorted(s.state.value for s in tx.task_steps(top.task_uuid))
    assert states == ["complete", "pending", "pending", "pending"]


@pytest.mark.postgres
def test_claiming_a_root_step_brings_its_task_row_and_what_a_claim_read_is_dropped_later(
    pg_store: PostgresStore,
) -> None:
    """The first step a worker claims of a task is a root step: its task's row comes with
    the claim. What the claim read is served as if read right after it, so any other
    statement of the transaction drops it (the plain reads then run)."""
    store = pg_store
    templates = templates_of(store)
    with store.transaction() as tx:
        created = create_task(
            tx, templates, TaskRequest(name="diamond", namespace="hot", context={"k": [1]}), NOW
        )
    with store.transaction() as tx:
        ((top, _),) = claim(tx, 1)
        before = store.stats.statements
        served = tx.get_tasks([top.task_uuid])
        ancestors = tx.ancestor_results(top.step_uuid)
        assert store.stats.statements == before
        assert tx.get_tasks([top.task_uuid]) == served  # read now: one statement
        assert store.stats.statements == before + 1
    with store.read() as tx:
        task = tx.get_task(created.task_uuid)
    assert served == {top.task_uuid: task}
    assert ancestors == {}
    succeed(store, templates, (top, _step(store, top.step_uuid)))

    with store.transaction() as tx:
        (left, _), (right, _) = claim(tx, 2)
        before = store.stats.statements
        assert tx.get_tasks([left.task_uuid]) == served  # not a root step: read
        assert store.stats.statements == before + 1
        assert list(tx.ancestor_results(left.step_uuid)) == ["top"]  # a task read keeps them
        assert store.stats.statements == before + 1
        tx.step_state_counts(left.task_uuid)
        assert list(tx.ancestor_results(right.step_uuid)) == ["top"]  # read again
        assert store.stats.statements == before + 3


def _step(store: Store, step_uuid: str) -> StepRecord:
    with store.read() as tx:
        step = tx.get_step(step_uuid)
    assert step is not None
    return step


@pytest.mark.postgres
def test_while_listening_one_waiting_thread_polls_and_the_others_wait_for_news(
    pg_store: PostgresStore,
) -> None:
    store = pg_store
    seen = store.wait_for_work(store.work_sequence(), 5.0)  # returns once it listens
    returned: dict[str, float] = {}

    def wait(name: str, timeout_s: float) -> None:
        started = time.monotonic()
        store.wait_for_work(seen, timeout_s)
        returned[name] = time.monotonic() - started

    poller = threading.Thread(target=wait, args=("poller", 30.0))
    poller.start()
    while not store._polling:
        time.sleep(0.001)
    quiet = threading.Thread(target=wait, args=("quiet", 0.05))
    quiet.start()
    time.sleep(0.3)  # six poll intervals: a polling thread would have returned
    still_waiting = quiet.is_alive() and poller.is_alive()
    store.notify_work()  # news wakes every waiting thread
    poller.join(5.0)
    quiet.join(5.0)

    assert still_waiting
    assert set(returned) == {"poller", "quiet"}


# -- plans (ADR 0018) -----------------------------------------------------------------------


def _prepared(tx: SqlTransaction) -> list[str]:
    rows = tx.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    return [str(r["statement"]) for r in rows]


@pytest.mark.postgres
def test_hot_statements_run_on_generic_plans_and_reports_on_custom_ones(
    pg_store: PostgresStore,
) -> None:
    """Connections plan prepared statements generically, so a statement prepared once is not
    planned again at each run; the reports of queries_operations.sql (optional filters) are
    never prepared, so each run is planned for its values."""
    with pg_store.transaction() as tx:
        task_uuid = create_task(
            tx, templates_of(pg_store), TaskRequest(name="diamond", namespace="hot"), NOW
        ).task_uuid
    for _ in range(8):  # beyond psycopg's prepare threshold (5)
        with pg_store.read() as tx:
            assert tx.get_task(task_uuid) is not None
            assert tx.task_count({"namespace": "hot"}) == 1
            assert [t.task_uuid for t, _ in tx.task_page({}, now=NOW, limit=5, offset=0)] == [
                task_uuid
            ]
    with pg_store.read() as tx:
        mode = tx.execute("SHOW plan_cache_mode").fetchall()[0]["plan_cache_mode"]
        prepared = _prepared(tx)
    assert mode == "force_generic_plan"
    assert any("FROM tasks WHERE task_uuid" in s for s in prepared), prepared
    assert not any("IS NULL OR t.namespace" in s for s in prepared), prepared


@pytest.mark.postgres
def test_a_urls_own_options_override_the_plan_mode(fresh_pg_dsn: str) -> None:
    """An operator who wants PostgreSQL's default plan choice sets it in the URL."""
    sep = "&" if "?" in fresh_pg_dsn else "?"
    store = PostgresStore(f"{fresh_pg_dsn}{sep}options=-c%20plan_cache_mode%3Dauto")
    try:
        with store.read() as tx:
            mode = tx.execute("SHOW plan_cache_mode").fetchall()[0]["plan_cache_mode"]
    finally:
        store.close()
    assert mode == "auto"


# -- a claim that commits (ADR 0020) ----------------------------------------------------------


def claim_and_commit(tx: SqlTransaction, limit: int) -> list[tuple[Claim, StepRecord]]:
    return claim_step_rows(
        tx,
        namespaces=None,
        limit=limit,
        worker_id="w1",
        lease_timeout_s=30.0,
        now=NOW,
        commit=True,
    )


@pytest.mark.postgres
def test_a_claim_sent_with_commit_is_committed_when_it_returns_and_only_reads_may_follow(
    pg_store: PostgresStore,
) -> None:
    store = pg_store
    templates = templates_of(store)
    with store.transaction() as tx:
        task_uuid = create_task(
            tx, templates, TaskRequest(name="diamond", namespace="hot"), NOW
        ).task_uuid
    commits = store.stats.commits

    def claim_then_write() -> str:
        with store.transaction() as tx:
            ((top, _),) = claim_and_commit(tx, 4)
            assert tx.committed
            with store.read() as other:  # another connection sees the claim already
                seen = other.get_step(top.step_uuid)
            assert seen is not None
            assert seen.state is StepState.IN_PROGRESS
            assert set(tx.get_tasks([task_uuid])) == {task_uuid}  # a read: allowed
            claimed.append(top.step_uuid)
            tx.lock_task(task_uuid)  # a write would commit on its own: refused
        return "unreachable"

    claimed: list[str] = []
    with pytest.raises(StoreError, match="after the transaction committed"):
        claim_then_write()

    assert store.stats.commits == commits + 1
    with store.read() as tx:
        row = tx.get_step(claimed[0])
    assert row is not None
    assert row.state is StepState.IN_PROGRESS  # committed with the claim, not rolled back


@pytest.mark.postgres
@pytest.mark.parametrize(("limit", "announced"), [(1, ["1"]), (4, [])])
def test_a_transaction_that_commits_with_its_claim_announces_only_the_steps_it_left(
    pg_store: PostgresStore, fresh_pg_dsn: str, limit: int, announced: list[str]
) -> None:
    """Top's result makes left and right ready; the same transaction claims ``limit`` steps
    and commits with the claim: the NOTIFY, counted in SQL after the claim, tells other
    processes about the one step it left (limit 1), and is not sent when it took both."""
    store = pg_store
    templates = templates_of(store)
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="diamond", namespace="hot"), NOW)
    with store.transaction() as tx:
        ((top, _),) = claim_and_commit(tx, 1)
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as listener:
        listener.execute("LISTEN tasker_work")
        with store.transaction() as tx:
            document = {"success": True, "result": {}, "metadata": {}}
            outcome = submit_result(
                tx, templates, top, document, NOW, jitter=False, step_template=TEMPLATE.step("top")
            )
            assert outcome is ResultOutcome.APPLIED
            claimed = claim_and_commit(tx, limit)
            assert tx.committed
        counts = [n.payload.split("|")[1] for n in listener.notifies(timeout=0.5, stop_after=1)]
    assert len(claimed) == min(limit, 2)
    assert counts == announced


@pytest.mark.postgres
def test_reads_end_without_forgetting_the_connections_prepared_statements(
    pg_store: PostgresStore,
) -> None:
    """psycopg drops every statement it prepared on a connection the first time that
    connection runs ROLLBACK (and again at each ROLLBACK after that). Reads end with COMMIT
    (the same for a read-only transaction), so statements a worker prepared on a connection
    stay prepared after a read borrowed it (ADR 0022)."""
    with pg_store.transaction() as tx:
        task_uuid = create_task(
            tx, templates_of(pg_store), TaskRequest(name="diamond", namespace="hot"), NOW
        ).task_uuid
    for _ in range(6):  # one thread: the pool lends it the same connection every time
        with pg_store.transaction() as tx:
            assert tx.get_task(task_uuid) is not None  # prepared at its fifth run
    read_commits = pg_store.stats.read_commits
    with pg_store.read() as tx:
        assert any("FROM tasks WHERE task_uuid = $1" in s for s in _prepared(tx))
    with pg_store.read() as tx:
        still = [s for s in _prepared(tx) if "FROM tasks WHERE task_uuid = $1" in s]
    with pg_store.read():
        pass  # never started: its BEGIN was held, nothing to end
    assert still
    # Counted apart from commits, so a server-wide commit count can leave them out.
    assert pg_store.stats.read_commits == read_commits + 2


@pytest.mark.postgres
def test_a_report_that_is_a_reads_first_statement_is_not_prepared_either(
    pg_store: PostgresStore,
) -> None:
    """The first statement of a read travels with its held ``BEGIN`` in a pipeline; a report
    sent that way is still planned for its values (ADR 0018)."""
    for _ in range(8):  # beyond psycopg's prepare threshold (5)
        with pg_store.read() as tx:
            assert tx.task_count({"namespace": "hot"}) == 0
    with pg_store.read() as tx:
        prepared = _prepared(tx)
    assert not any("IS NULL OR t.namespace" in s for s in prepared), prepared


def test_a_task_with_its_steps_reads_what_the_two_reads_read(store: Store) -> None:
    """Both backends; on PostgreSQL the read's first statements also carry its COMMIT (one
    round trip for a caller's view of a task), after which the read is over."""
    templates = templates_of(store)
    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="diamond", namespace="hot"), NOW)

    before = store.stats.read_commits
    with store.read() as tx:
        task, steps = tx.task_with_steps(created.task_uuid)
        ended = tx.committed
    with store.read() as tx:
        assert (task, steps) == (
            tx.get_task(created.task_uuid),
            tx.task_steps(created.task_uuid),
        )
        assert tx.task_with_steps("no-such-task") == (None, [])
    with store.read() as tx:  # a task in none of the states: its row, no steps
        assert tx.task_with_steps(created.task_uuid, {TaskState.COMPLETE}) == (task, [])
    with store.read() as tx:
        assert tx.task_with_steps(created.task_uuid, {TaskState.STEPS_IN_PROCESS}) == (
            task,
            steps,
        )
    assert task is not None
    assert sorted(s.name for s in steps) == ["bottom", "left", "right", "top"]
    if isinstance(store, PostgresStore):
        assert ended
        assert store.stats.read_commits == before + 4  # each read committed once
        with store.read() as tx:
            tx.task_with_steps(created.task_uuid)
            with pytest.raises(StoreError, match="after the transaction"):
                tx.step_overview(created.task_uuid, NOW)  # the read is over
