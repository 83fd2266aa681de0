"""Claim batches (ADR 0010), end to end on both backends.

A busy worker thread claims as many steps as its average handler run fits in the batch budget,
runs them one after another and records them in one transaction; a thread stuck in one of them
loses the rest of its batch to its replacement, not to the lease timeout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tasker.config import Settings
from tasker.runtime import Tasker, TaskView
from tasker.worker.runner import PoolSettings, WorkerPool
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import FAST, HANDLERS, WAIT_S

LEAVES = 40


def fan_template(path: Path, leaf_handlers: dict[str, str]) -> Path:
    """``start`` → one leaf per entry of ``leaf_handlers`` (name → handler) → ``join``."""
    lines = [
        "name: fan",
        "namespace_name: engine",
        'version: "1.0.0"',
        "steps:",
        "  - {name: start, handler: {callable: engine_const}}",
    ]
    for name, handler in leaf_handlers.items():
        extra = ", timeout_seconds: 1" if handler == "engine_sleeper" else ""
        lines.append(
            f"  - {{name: {name}, dependencies: [start], handler: {{callable: {handler}}}{extra}}}"
        )
    lines.append(
        f"  - {{name: join, dependencies: [{', '.join(leaf_handlers)}],"
        " handler: {callable: engine_const}}"
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def engine(database_url: str, template: Path, **overrides: Any) -> Tasker:
    settings = Settings.load({**FAST, "concurrency": 1, **overrides}, environ={})
    return Tasker(database_url, settings=settings, templates=[template], handlers=[HANDLERS])


def run_fan(app: Tasker, recorder: Recorder) -> tuple[TaskView, int]:
    """Run one ``fan`` task to the end; returns it and the commits it took."""
    commits = app.store.stats.commits
    task_uuid = app.create_task(
        "fan", namespace="engine", context=recorder.context(engine=app.worker_id)
    )
    view = app.wait(task_uuid, WAIT_S)
    assert all(step.state == "complete" for step in view.steps.values()), view.steps
    return view, app.store.stats.commits - commits


def test_a_busy_thread_records_fast_steps_in_batches(
    database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    template = fan_template(
        tmp_path / "fan.yaml", {f"leaf_{i:02}": "engine_const" for i in range(LEAVES)}
    )
    # A generous budget, so that a loaded machine's slower runs still fill whole batches.
    batched = engine(database_url, template, claim_batch_budget_ms=50.0).start()
    try:
        view, batched_commits = run_fan(batched, recorder)
    finally:
        batched.close()
    single = engine(database_url, template, claim_batch_max=1).start()
    try:
        single_view, single_commits = run_fan(single, recorder)
    finally:
        single.close()

    assert (view.state, single_view.state) == ("complete", "complete")
    # One thread, one step per transaction: a commit per leaf. Batched: a few for all 40.
    assert single_commits >= LEAVES
    assert batched_commits * 3 < single_commits, (batched_commits, single_commits)


def test_a_thread_stuck_in_a_batch_hands_the_rest_to_its_replacement(
    database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    leaves = {f"leaf_{i:02}": "engine_const" for i in range(LEAVES)}
    leaves["leaf_20"] = "engine_sleeper"  # its first run outlives timeout_seconds (1 s)
    app = engine(database_url, fan_template(tmp_path / "fan.yaml", leaves), lease_timeout_s=60.0)
    app.start()
    try:
        # Without the hand-over the other leaves of the stuck batch would wait for their
        # 60 s leases to expire, far past WAIT_S.
        view, _ = run_fan(app, recorder)
    finally:
        recorder.release_all()
        app.close()

    assert view.state == "complete"
    assert view.steps["leaf_20"].attempts == 2  # timed out once, then ran again
    assert view.steps["leaf_20"].result == {"attempt": 2}


def test_claims_are_single_while_a_thread_waits_for_work() -> None:
    pool = WorkerPool.__new__(WorkerPool)
    pool.settings = PoolSettings(batch_max=32, batch_budget_s=0.002)
    pool._run_s = None
    pool._idle = 0
    assert pool._batch_limit() == 1, "no handler run measured yet"
    pool._run_s = 0.0001
    assert pool._batch_limit() == 20, "2 ms of 0.1 ms runs"
    pool._run_s = 0.000001
    assert pool._batch_limit() == 32, "capped at batch_max"
    pool._run_s = 0.5
    assert pool._batch_limit() == 1, "slow handlers are claimed one at a time"
    pool._run_s = 0.0001
    pool._idle = 1
    assert pool._batch_limit() == 1, "an idle thread of the pool takes the next step instead"


def test_shutdown_releases_the_claims_a_thread_had_not_started(
    database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    leaves = {f"leaf_{i:02}": "engine_const" for i in range(LEAVES)}
    leaves["leaf_00"] = "engine_blocker"  # claimed first; holds its thread past the grace
    template = fan_template(tmp_path / "fan.yaml", leaves)
    app = engine(database_url, template, lease_timeout_s=60.0)
    app.start()
    task_uuid = app.create_task("fan", namespace="engine", context=recorder.context())
    deadline = time.monotonic() + WAIT_S
    while not recorder.marks_of(task_uuid, "leaf_00", "start"):
        assert time.monotonic() < deadline, "the blocker never started"
        time.sleep(0.01)

    app.stop(grace_s=0.2)
    with app.store.read() as tx:
        held = [step.name for step in tx.task_steps(task_uuid) if step.state == "in_progress"]
    recorder.release_all()
    app.close()

    # Nothing is left to its 60 s lease: every claim not recorded went back to the queue.
    assert held == []
    restarted = engine(database_url, template).start()
    try:
        view = restarted.wait(task_uuid, WAIT_S)
    finally:
        restarted.close()
    assert view.state == "complete"
    assert {name: step.attempts for name, step in view.steps.items()} == dict.fromkeys(
        view.steps, 1
    ), "a released claim does not spend an attempt"
    for name in (n for n in leaves if n != "leaf_00"):
        starts = recorder.marks_of(task_uuid, name, "start")
        assert len(starts) == 1, f"{name} ran {len(starts)} times: a run result was lost"


def test_a_task_leaves_the_task_cache_when_the_pool_settles_it(
    database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """The cache holds the tasks in flight: a backlog larger than a bound would miss on every
    claim (claims go one step of every waiting task before the next step of any)."""
    template = fan_template(tmp_path / "fan.yaml", {"leaf": "engine_const"})
    app = engine(database_url, template).start()
    try:
        view, _ = run_fan(app, recorder)
        pool = app._pool
        assert pool is not None
        assert view.task_uuid not in pool._tasks
    finally:
        app.close()
