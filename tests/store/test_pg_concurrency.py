"""PostgreSQL under concurrency: claims from many threads, two parents finishing at once.

Every thread runs its own transactions on its own pooled connection, as worker threads do.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from tasker.domain.model import Claim, TaskRequest
from tasker.domain.states import StepState, TaskState
from tasker.orchestration.claims import claim_steps
from tasker.orchestration.creation import create_task
from tasker.orchestration.results import ResultOutcome, submit_result
from tasker.orchestration.templates import TemplateCache
from tasker.store.postgres import PostgresStore
from tasker.templates import load_template_text

pytestmark = pytest.mark.postgres

T = TypeVar("T")
THREADS = 8

WIDE = """
name: wide
namespace_name: race
version: "1.0.0"
identity_strategy: always_unique
steps:
""" + "".join(f"  - name: s{i}\n    handler: {{callable: race.s{i}}}\n" for i in range(10))

DIAMOND = """
name: diamond
namespace_name: race
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: top
    handler: {callable: race.top}
  - name: left
    dependencies: [top]
    handler: {callable: race.left}
  - name: right
    dependencies: [top]
    handler: {callable: race.right}
  - name: join
    dependencies: [left, right]
    handler: {callable: race.join}
"""


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def store(fresh_pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(fresh_pg_dsn, max_connections=THREADS + 2)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def templates(store: PostgresStore) -> TemplateCache:
    cache = TemplateCache("test")
    with store.transaction() as tx:
        cache.register(tx, load_template_text(WIDE, "wide.yaml"))
        cache.register(tx, load_template_text(DIAMOND, "diamond.yaml"))
    return cache


def run_together(calls: list[Callable[[], T]]) -> list[T]:
    """Run each call on its own thread, released at the same instant."""
    barrier = threading.Barrier(len(calls))

    def start(call: Callable[[], T]) -> T:
        barrier.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(start, calls))


def claim(store: PostgresStore, worker: str, limit: int = 1) -> list[Claim]:
    with store.transaction() as tx:
        return claim_steps(
            tx, namespaces=["race"], limit=limit, worker_id=worker, lease_timeout_s=60.0, now=now()
        )


def test_every_step_is_claimed_exactly_once_by_concurrent_claimers(
    store: PostgresStore, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        for _ in range(20):
            create_task(tx, templates, TaskRequest(name="wide", namespace="race"), now())
        total = tx.table_counts()["workflow_steps"]

    claimed_so_far = Counter[str]()
    lock = threading.Lock()

    def claimer(worker: str) -> Callable[[], list[Claim]]:
        def loop() -> list[Claim]:
            mine: list[Claim] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got = claim(store, worker, limit=2)
                mine.extend(got)
                with lock:
                    claimed_so_far.update(c.step_uuid for c in got)
                    if len(claimed_so_far) >= total:
                        return mine
            return mine

        return loop

    per_thread = run_together([claimer(f"w{i}") for i in range(THREADS)])

    claimed = Counter(c.step_uuid for claims in per_thread for c in claims)
    with store.read() as tx:
        starts = Counter(
            step
            for step in claimed
            for row in tx.step_transitions(step)
            if row.to_state == StepState.IN_PROGRESS.value
        )
    assert total == 200
    assert len(claimed) == total
    assert set(claimed.values()) == {1}
    assert set(starts.values()) == {1}
    assert sum(1 for claims in per_thread if claims) > 1  # the claims really were concurrent


def test_a_claimer_skips_rows_another_claimer_holds_instead_of_waiting(
    store: PostgresStore, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="wide", namespace="race"), now())

    with store.transaction() as holder:
        held = holder.claim_candidates(None, 4)
        started = time.monotonic()
        with store.transaction() as other:  # a second pooled connection, as another worker
            offered = other.claim_candidates(None, 4)
        waited = time.monotonic() - started

    assert len(held) == len(offered) == 4
    assert not {c[0] for c in held} & {c[0] for c in offered}
    assert waited < 2.0


def test_two_parents_finishing_at_once_enqueue_their_join_exactly_once(
    store: PostgresStore, templates: TemplateCache
) -> None:
    ok = {"success": True, "result": {"ok": True}}
    for _ in range(50):
        with store.transaction() as tx:
            task = create_task(tx, templates, TaskRequest(name="diamond", namespace="race"), now())
            steps = {s.name: s.workflow_step_uuid for s in tx.task_steps(task.task_uuid)}
        [top] = claim(store, "w-top")
        with store.transaction() as tx:
            assert submit_result(tx, templates, top, ok, now()) is ResultOutcome.APPLIED
        parents = claim(store, "w-parents", limit=2)
        assert {c.step_uuid for c in parents} == {steps["left"], steps["right"]}

        def submit(parent: Claim) -> Callable[[], ResultOutcome]:
            def call() -> ResultOutcome:
                with store.transaction() as tx:
                    return submit_result(tx, templates, parent, ok, now())

            return call

        outcomes = run_together([submit(p) for p in parents])

        with store.read() as tx:
            join_enqueues = [
                row
                for row in tx.step_transitions(steps["join"])
                if row.to_state == StepState.ENQUEUED.value
            ]
            record = tx.get_task(task.task_uuid)
        assert outcomes == [ResultOutcome.APPLIED, ResultOutcome.APPLIED]
        assert len(join_enqueues) == 1
        assert record is not None
        assert record.state is TaskState.STEPS_IN_PROCESS

        [join] = claim(store, "w-join")
        with store.transaction() as tx:
            submit_result(tx, templates, join, ok, now())
            done = tx.get_task(task.task_uuid)
        assert done is not None
        assert done.state is TaskState.COMPLETE
