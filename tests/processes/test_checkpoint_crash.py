"""A worker process killed mid-step: the next one resumes from the last committed checkpoint
(batch-and-decisions.md §3.4, reliability.md R4.1), on PostgreSQL with real ``tasker worker``s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from tasker.config import Settings
from tasker.runtime import Tasker
from tests.fixtures.handlers.dynamic_handlers import read_journal

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "fixtures"
TEMPLATE = FIXTURES / "templates" / "dynamic" / "checkpointed_sum.yaml"
ITEMS = 400
EVERY = 20
ITEM_DELAY_S = 0.01  # a full run takes about 4 s
KILL_AFTER = 100  # kill once a checkpoint at or past this cursor is committed


@pytest.fixture
def worker_env(fresh_pg_dsn: str) -> dict[str, str]:
    """Environment of a worker: the fixture handlers, short leases and polls."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FIXTURES / "handlers"), *sys.path]),
        "TASKER_DATABASE_URL": fresh_pg_dsn,
        "TASKER_HANDLERS": "dynamic_handlers",
        "TASKER_TEMPLATE_PATH": str(TEMPLATE),
        "TASKER_LEASE_TIMEOUT_S": "2",
        "TASKER_HEARTBEAT_INTERVAL_S": "0.5",
        "TASKER_MAINTENANCE_INTERVAL_S": "0.1",
        "TASKER_POLL_INTERVAL_S": "0.1",
        "TASKER_SHUTDOWN_GRACE_S": "2",
    }


class Workers:
    """``tasker worker`` processes started by one test; stderr goes to a file per process."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker{len(self.procs)}.log").open("wb")
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tasker.cli.main", "worker", "--concurrency", "1"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for log in self.logs:
            log.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def checkpoint(app: Tasker, task_uuid: str) -> dict[str, Any] | None:
    return app.get_task(task_uuid).steps["sum_values"].checkpoint


def test_sigkilled_worker_step_resumes_in_another_worker_from_the_committed_checkpoint(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    values = [(i * 7919) % 1009 + i for i in range(ITEMS)]
    journal = tmp_path / "journal.jsonl"
    settings = Settings.load({"database_url": worker_env["TASKER_DATABASE_URL"]}, environ={})
    app = Tasker(settings=settings, templates=[TEMPLATE])  # creates tasks, runs no workers
    workers = Workers(worker_env, tmp_path)
    try:
        first = workers.start()
        task_uuid = app.create_task(
            "checkpointed_sum",
            namespace="dynamic",
            context={
                "values": values,
                "every": EVERY,
                "item_delay_s": ITEM_DELAY_S,
                "journal": str(journal),
            },
        )
        assert wait_for(
            lambda: (checkpoint(app, task_uuid) or {}).get("cursor", 0) >= KILL_AFTER, 30
        ), "no checkpoint was committed"
        first.kill()
        first.wait(10)
        committed = checkpoint(app, task_uuid)  # the last one the dead worker committed
        assert committed is not None
        assert app.get_task(task_uuid).steps["sum_values"].state == "in_progress"
        second = workers.start()
        view = app.wait(task_uuid, timeout_s=40)
    finally:
        workers.kill_all()
        app.close()

    cursor = committed["cursor"]
    assert KILL_AFTER <= cursor < ITEMS, "the kill must land mid-run"
    step = view.steps["sum_values"]
    assert view.state == "complete"
    assert step.attempts == 2, "the killed run counts as an attempt"
    assert step.result == {"sum": sum(values), "items_processed": ITEMS}
    entries = read_journal(journal)
    assert {e["pid"] for e in entries} == {first.pid, second.pid}
    before = [e for e in entries if e["pid"] == first.pid]
    after = [e for e in entries if e["pid"] == second.pid]
    resumed = after[0]
    assert resumed["event"] == "invoke"
    assert (resumed["has_checkpoint"], resumed["cursor"]) == (True, cursor)
    assert resumed["accumulated"] == {"sum": sum(values[:cursor])}
    rerun_items = [e["index"] for e in after if e["event"] == "item"]
    assert rerun_items == list(range(cursor, ITEMS)), "the rerun starts at the checkpoint cursor"
    first_items = [e["index"] for e in before if e["event"] == "item"]
    assert first_items == list(range(len(first_items)))
    assert len(first_items) >= cursor
    times = Counter(first_items + rerun_items)
    assert all(times[i] == 1 for i in range(cursor)), "an item before the checkpoint reran"
