"""Parked threads (ADR 0014): while handlers are quick and on the CPU, the threads of a pool
beyond the busy one park instead of contending for the GIL and the write lock; a parked or
idle thread steps in for a run that has lasted ``step_in_s``, taking over the steps claimed
behind it."""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from tasker.config import Settings
from tasker.domain.model import Claim
from tasker.domain.template import StepTemplate
from tasker.orchestration.templates import TemplateCache
from tasker.runtime import Tasker
from tasker.store.base import Store
from tasker.worker.handlers import HandlerRegistry
from tasker.worker.runner import PoolSettings, WorkerPool, _Batch, _Job, _Run
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import FAST, HANDLERS, WAIT_S

QUICK = 0.00005  # a 50 µs run: 40 of them fit in the 2 ms batch budget
ON_CPU = 0.000001
BLOCKING = 0.001  # a run that spends 1 ms off the CPU (I/O, a sleep)


def pool(backend: str = "sqlite", **settings: Any) -> WorkerPool:
    """A pool whose threads are not started: its decisions are plain methods."""
    made = WorkerPool(
        cast(Store, SimpleNamespace(backend=backend)),
        cast(TemplateCache, None),
        HandlerRegistry(),
        PoolSettings(**{"concurrency": 4, **settings}),
    )
    made._run_s, made._off_s = QUICK, ON_CPU
    return made


def job(name: str) -> _Job:
    claim = Claim("task", name, f"token-{name}", "worker", 0, datetime.now(UTC))
    return _Job(claim, {}, cast(StepTemplate, None))


def test_a_thread_parks_only_beside_a_busy_thread_running_quick_handlers_on_the_cpu() -> None:
    workers = pool()
    me, busy = 1, 2
    assert not workers._parks(me), "no other thread holds work: parking would stall it"
    workers._holders.add(busy)
    assert workers._parks(me)
    workers._holders.add(me)
    assert workers._parks(me), "a thread still holding its recorded batch decides before it ends"

    workers._off_s = BLOCKING
    assert not workers._parks(me), "handlers that block keep every thread running"
    workers._off_s = ON_CPU
    workers._run_s = 0.0015
    assert not workers._parks(me), "runs too slow to batch: each thread takes its own step"
    workers._run_s = None
    assert not workers._parks(me), "no run measured yet"
    for single in (pool(concurrency=1), pool(batch_max=1)):
        single._holders.add(busy)
        assert not single._parks(me), single.settings
    overlapping = pool(backend="postgres")
    overlapping._holders.add(busy)
    assert not overlapping._parks(me), "PostgreSQL transactions of one process overlap"


def test_the_busy_thread_claims_for_the_threads_parked_beside_it() -> None:
    workers = pool(batch_max=32, batch_budget_s=0.002)
    workers._run_s = 0.0001
    assert workers._batch_limit() == 20, "2 ms of 0.1 ms runs"
    assert workers._batch_limit(share=4) == 80, "four threads' budgets"
    workers._run_s = 0.000001
    assert workers._batch_limit(share=4) == 128, "four threads' batch_max"
    workers._idle = 1
    assert workers._batch_limit(share=4) == 1, "an idle thread takes the next step instead"


def test_no_thread_parks_while_a_run_has_lasted_the_step_in_time() -> None:
    workers = pool()
    workers._holders.add(2)
    run = _Run(job("slow").claim, deadline=1e12, thread=threading.current_thread())
    workers._runs[2] = run
    assert workers._parks(1)
    run.started -= 0.005
    assert not workers._parks(1), "a stuck run: every thread is wanted"
    run.abandoned = True
    assert workers._parks(1), "an abandoned run has its replacement thread"


def test_a_thread_stepping_in_takes_the_steps_claimed_behind_a_stuck_run() -> None:
    workers = pool()
    stuck = _Batch(deque([job("b"), job("c")]))
    workers._batches[2] = stuck
    run = _Run(job("a").claim, deadline=1e12, thread=threading.current_thread())
    workers._runs[2] = run
    mine = _Batch()

    del workers._runs[2]
    assert workers._watch_timeout(0.0) == 0.005, "between two runs: look again in step_in_s"
    workers._runs[2] = run
    assert not workers._take_stuck(mine, run.started + 0.001), "not stuck yet"
    assert workers._watch_timeout(run.started + 0.001) <= 0.004 + 1e-9
    # (started + 0.005) - started can come out a hair under 0.005 in floating point.
    assert workers._take_stuck(mine, run.started + 0.005 + 1e-9)
    assert [j.claim.step_uuid for j in mine.queued] == ["b", "c"]
    assert not stuck.queued, "each claimed step is held by one thread only"
    assert workers._watch_timeout(run.started + 0.005) == float("inf"), "nothing left behind it"
    overlapping = pool(backend="postgres")  # no parking there; idle threads step in later
    overlapping._batches[2] = _Batch(deque([job("d")]))
    overlapping._runs[2] = run
    assert not overlapping._take_stuck(_Batch(), run.started + 0.005)
    assert overlapping._take_stuck(_Batch(), run.started + 0.05 + 1e-9)


def test_branches_that_wait_for_each_other_finish_in_a_pool_that_parks(
    database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """Quick leaves first, so that the second thread parks and the busy one claims batches;
    then two leaves that rendezvous at a barrier, likely claimed in one batch: the parked
    thread steps in for the one stuck at the barrier and runs its partner (on PostgreSQL,
    where threads do not park, an idle thread steps in, later)."""
    quick = [
        f"  - {{name: leaf_{i:02}, dependencies: [start], handler: {{callable: engine_const}}}}"
        for i in range(30)
    ]
    pair = [
        f"  - {{name: {name}, dependencies: [start],"
        f" handler: {{callable: engine_rendezvous, initialization: {{add: {add}}}}}}}"
        for name, add in (("pair_a", 1), ("pair_b", 2))
    ]
    template = tmp_path / "pairs.yaml"
    template.write_text(
        "\n".join(
            [
                "name: pairs",
                "namespace_name: engine",
                'version: "1.0.0"',
                "steps:",
                "  - {name: start, handler: {callable: engine_const,"
                " initialization: {payload: {value: 1}}}}",
                *quick,
                *pair,
            ]
        )
        + "\n"
    )
    settings = Settings.load({**FAST, "concurrency": 2}, environ={})
    app = Tasker(database_url, settings=settings, templates=[template], handlers=[HANDLERS])
    app.start()
    try:
        for round_ in range(3):
            task_uuid = app.create_task(
                "pairs", namespace="engine", context=recorder.context(round=round_)
            )
            view = app.wait(task_uuid, WAIT_S)
            assert view.state == "complete", (round_, view.steps)
            assert view.steps["pair_a"].result == {"value": 2}
            assert view.steps["pair_b"].result == {"value": 3}
            threads = {
                mark.thread
                for name in ("pair_a", "pair_b")
                for mark in recorder.marks_of(task_uuid, name, "finish")
            }
            assert len(threads) == 2, "the partners ran side by side"
    finally:
        recorder.release_all()
        app.close()
