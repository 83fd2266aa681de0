"""``Tasker.wait`` on a task this process created: no first read while it cannot be settled.

The process hears every settle of such a task (its workers run here on SQLite; on PostgreSQL
its LISTEN connection was up when it created the task), so the waiter sleeps until the settle
wakes it instead of reading a task that is still running. A task that settled before the
waiter came is read at once. The poll interval is raised far above the waits here, so a waiter
that missed a wake-up would show as a missing read, not as a slow test.
"""

from __future__ import annotations

import threading
import time

import pytest

import tasker.runtime
from tasker.runtime import Tasker, TaskView
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import WAIT_S, MakeTasker


def counting_reads(app: Tasker, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Every read of a task by ``wait`` (uuid, when), from now on."""
    reads: list[tuple[str, float]] = []
    original = app._settled_view

    def counted(task_uuid: str) -> TaskView | None:
        reads.append((task_uuid, time.monotonic()))
        return original(task_uuid)

    monkeypatch.setattr(app, "_settled_view", counted)
    return reads


def hearing(app: Tasker, recorder: Recorder) -> Tasker:
    """A started engine that hears every settle (PostgreSQL: once its LISTEN is up)."""
    first = app.create_task("linear_chain", namespace="engine", context=recorder.context(seed=2))
    app.wait(first, WAIT_S)  # subscribes
    deadline = time.monotonic() + WAIT_S
    while app.store.backend == "postgres" and not app.store.hears_settles():
        assert time.monotonic() < deadline, "the LISTEN connection never came up"
        time.sleep(0.01)
    return app


def test_a_running_task_created_here_is_read_once_when_its_settle_wakes_the_waiter(
    make_tasker: MakeTasker, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasker.runtime, "_WAIT_POLL_S", 60.0)
    app = hearing(make_tasker("linear_chain", "cancellable"), recorder)
    reads = counting_reads(app, monkeypatch)
    task_uuid = app.create_task("cancellable", namespace="engine", context=recorder.context())
    opened: list[float] = []

    def open_when_waited_on() -> None:
        while task_uuid not in app._waiters:
            time.sleep(0.005)
        time.sleep(0.05)  # the waiter is asleep by now
        opened.append(time.monotonic())
        recorder.gate("blocker").set()

    opener = threading.Thread(target=open_when_waited_on)
    opener.start()
    view = app.wait(task_uuid, WAIT_S)
    opener.join()

    assert view.state == "complete"
    assert [uuid for uuid, _ in reads] == [task_uuid]  # one read, no first read
    assert reads[0][1] > opened[0]  # after the handler was let go


def test_a_task_created_here_that_settled_before_the_wait_is_read_at_once(
    make_tasker: MakeTasker, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasker.runtime, "_WAIT_POLL_S", 60.0)
    app = hearing(make_tasker("linear_chain"), recorder)
    task_uuid = app.create_task(
        "linear_chain", namespace="engine", context=recorder.context(seed=3)
    )
    deadline = time.monotonic() + WAIT_S
    while app.get_task(task_uuid).state != "complete":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    reads = counting_reads(app, monkeypatch)

    view = app.wait(task_uuid, 2.0)  # a waiter that skipped its read would time out here

    assert [uuid for uuid, _ in reads] == [task_uuid]
    assert view.steps["fourth"].result == {"value": 43046721}
