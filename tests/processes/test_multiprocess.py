"""Real worker processes on one PostgreSQL database (issue: scale-out; reliability.md R1, R10.1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasker.config import Settings
from tasker.runtime import Tasker

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "fixtures"
DIAMOND = """
name: proc_diamond
namespace_name: proc
version: "1.0.0"
steps:
  - name: start
    handler: {callable: proc.record, initialization: {name: start}}
  - name: left
    dependencies: [start]
    handler: {callable: proc.record, initialization: {name: left}}
  - name: right
    dependencies: [start]
    handler: {callable: proc.record, initialization: {name: right}}
  - name: join
    dependencies: [left, right]
    handler: {callable: proc.record, initialization: {name: join}}
"""
SLOW = """
name: proc_slow
namespace_name: proc
version: "1.0.0"
steps:
  - name: slow
    handler: {callable: proc.slow_once, initialization: {name: slow}}
    retry: {max_attempts: 3, backoff: none}
  - name: after
    dependencies: [slow]
    handler: {callable: proc.record, initialization: {name: after}}
"""


@pytest.fixture
def proc_env(fresh_pg_dsn: str, tmp_path: Path) -> dict[str, str]:
    import psycopg

    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE executions (task_uuid text, step_name text, worker_pid int,"
            " retry_count int, at timestamptz DEFAULT now())"
        )
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "diamond.yaml").write_text(DIAMOND)
    (tmp_path / "templates" / "slow.yaml").write_text(SLOW)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FIXTURES / "handlers"), *sys.path]),
        "TASKER_DATABASE_URL": fresh_pg_dsn,
        "TASKER_HANDLERS": "process_handlers",
        "TASKER_TEMPLATE_PATH": str(tmp_path / "templates"),
        "TASKER_TEST_RECORD_DSN": fresh_pg_dsn,
        "TASKER_TEST_MARKER_DIR": str(tmp_path),
        "TASKER_LEASE_TIMEOUT_S": "2",
        "TASKER_HEARTBEAT_INTERVAL_S": "0.5",
        "TASKER_MAINTENANCE_INTERVAL_S": "0.1",
        "TASKER_POLL_INTERVAL_S": "0.2",
        "TASKER_SHUTDOWN_GRACE_S": "5",
    }
    return env


def start_worker(env: dict[str, str], concurrency: int) -> subprocess.Popen[bytes]:
    """Start a ``tasker worker``; its stderr goes to a log file beside the test's markers."""
    log = Path(env["TASKER_TEST_MARKER_DIR"]) / f"worker-{time.monotonic_ns()}.log"
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tasker.cli.main", "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in workers:
        try:
            codes.append(proc.wait(timeout=20))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(-9)
    return codes


def client(env: dict[str, str]) -> Tasker:
    """A task-creating process that runs no workers of its own."""
    settings = Settings.load({"database_url": env["TASKER_DATABASE_URL"]}, environ={})
    sys.path.insert(0, str(FIXTURES / "handlers"))
    return Tasker(settings=settings, templates=[Path(env["TASKER_TEMPLATE_PATH"])])


def executions(dsn: str) -> list[tuple[str, str, int, int]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return list(
            conn.execute("SELECT task_uuid, step_name, worker_pid, retry_count FROM executions")
        )


def test_four_worker_processes_run_every_step_of_300_diamonds_exactly_once(
    proc_env: dict[str, str],
) -> None:
    app = client(proc_env)
    workers = [start_worker(proc_env, concurrency=3) for _ in range(4)]
    try:
        task_uuids = [
            app.create_task("proc_diamond", namespace="proc", context={"n": i}) for i in range(300)
        ]
        views = [app.wait(uuid, timeout_s=120) for uuid in task_uuids]
    finally:
        codes = stop_workers(workers)
        app.close()
    assert [v.state for v in views] == ["complete"] * 300
    rows = executions(proc_env["TASKER_TEST_RECORD_DSN"])
    runs: dict[tuple[str, str], int] = {}
    for task_uuid, step, _pid, _retry in rows:
        runs[(task_uuid, step)] = runs.get((task_uuid, step), 0) + 1
    assert len(runs) == 300 * 4
    assert set(runs.values()) == {1}, "a step ran more than once"
    assert len({pid for *_rest, pid, _retry in rows}) > 1, "only one worker did all the work"
    assert codes == [0, 0, 0, 0], "SIGTERM must exit 0"


def wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigkilled_worker_loses_its_step_to_another_after_the_lease(
    proc_env: dict[str, str], tmp_path: Path
) -> None:
    app = client(proc_env)
    first = start_worker(proc_env, concurrency=1)
    try:
        task_uuid = app.create_task("proc_slow", namespace="proc", context={"sleep_s": 60})
        assert wait_for(lambda: any(tmp_path.glob("*.running")), 20), "step never started"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_worker(proc_env, concurrency=1)
        view = app.wait(task_uuid, timeout_s=30)
        stop_workers([second])
    finally:
        stop_workers([first])
        app.close()
    assert view.state == "complete"
    assert view.steps["slow"].attempts == 2, "the lost run counts as an attempt"
    assert view.steps["slow"].result["attempt"] == 2
    pids = {
        pid
        for _t, step, pid, _r in executions(proc_env["TASKER_TEST_RECORD_DSN"])
        if step == "slow"
    }
    assert first.pid in pids, "the first run happened in the killed worker"
    assert len(pids) == 2, "the rerun happened in another process"


def test_a_paused_worker_whose_lease_expired_cannot_record_its_late_result(
    proc_env: dict[str, str], tmp_path: Path
) -> None:
    app = client(proc_env)
    paused = start_worker(proc_env, concurrency=1)
    other: subprocess.Popen[bytes] | None = None
    try:
        task_uuid = app.create_task("proc_slow", namespace="proc", context={"sleep_s": 3})
        assert wait_for(lambda: any(tmp_path.glob("*.running")), 20), "step never started"
        paused.send_signal(signal.SIGSTOP)  # no heartbeats: the lease expires
        other = start_worker(proc_env, concurrency=1)
        view = app.wait(task_uuid, timeout_s=30)
        assert view.state == "complete"
        rerun = view.steps["slow"].result
        paused.send_signal(signal.SIGCONT)  # it wakes, finishes its sleep, submits late
        assert wait_for(lambda: (tmp_path / f"{paused.pid}.finished").exists(), 20)
        time.sleep(1.0)
        after = app.get_task(task_uuid)
    finally:
        stop_workers([p for p in (paused, other) if p is not None])
        app.close()
    assert after.steps["slow"].result == rerun, "the late result must be refused"
    assert after.steps["slow"].attempts == 2
    assert after.state == "complete"
