"""Operator step actions on a real engine: a failed task is repaired and runs to completion.

Each test runs a ``Tasker`` with worker threads on a fresh store (SQLite and PostgreSQL). The
handlers read a per-test ``Switch`` (found through the task context) so a test decides when a
step fails, succeeds or blocks.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tasker.config import Settings
from tasker.domain.states import StepState, TaskState
from tasker.errors import IllegalTransition, PermanentError, StepNotFound, TaskNotFound
from tasker.orchestration.dlq import dlq_entry_for_task, list_dlq_entries
from tasker.orchestration.operator import (
    complete_step_manually,
    give_up_task,
    reset_step_for_retry,
    resolve_step_manually,
    resolve_task_manually,
)
from tasker.runtime import Tasker, TaskView
from tasker.templates import load_template_text
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

WAIT_S = 15.0

# -- handlers and their switches ----------------------------------------------------------------


@dataclass
class Switch:
    """What the handlers of one test do: fail while ``broken``, block ``slow`` until released."""

    broken: bool = True
    released: threading.Event = field(default_factory=threading.Event)
    seen: dict[str, Any] = field(default_factory=dict)


_SWITCHES: dict[str, Switch] = {}


def _switch(context: StepContext) -> Switch:
    return _SWITCHES[str(context.get_input("run"))]


class Fetch(StepHandler):
    handler_name = "ops_fetch"

    def call(self, context: StepContext) -> StepHandlerResult:
        switch = _switch(context)
        switch.seen["fetch_retry_count"] = context.retry_count
        if switch.broken:
            raise PermanentError("upstream refused the request")
        return self.success({"value": 42})


class Use(StepHandler):
    handler_name = "ops_use"

    def call(self, context: StepContext) -> StepHandlerResult:
        seen = context.get_dependency_result("fetch")
        _switch(context).seen["use_saw"] = seen
        return self.success({"fetched": seen})


class Ok(StepHandler):
    handler_name = "ops_ok"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({"ok": True})


class Slow(StepHandler):
    handler_name = "ops_slow"

    def call(self, context: StepContext) -> StepHandlerResult:
        _switch(context).released.wait(WAIT_S)
        return self.success({"slow": True})


REPAIRABLE = """
name: repairable
namespace_name: ops
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: fetch
    handler: {callable: ops_fetch}
    retry: {retryable: false, max_attempts: 1}
  - name: use
    dependencies: [fetch]
    handler: {callable: ops_use}
"""

PARALLEL = """
name: parallel
namespace_name: ops
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: fetch
    handler: {callable: ops_fetch}
    retry: {retryable: false, max_attempts: 1}
  - name: slow
    handler: {callable: ops_slow}
  - name: use
    dependencies: [fetch, slow]
    handler: {callable: ops_use}
"""


ROUTED = """
name: routed
namespace_name: ops
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: start
    handler: {callable: ops_ok}
  - name: route
    type: decision
    dependencies: [start]
    handler: {callable: ops_fetch}
    retry: {retryable: false, max_attempts: 1}
  - name: branch_a
    dependencies: [route]
    handler: {callable: ops_ok}
  - name: branch_b
    dependencies: [route]
    handler: {callable: ops_ok}
"""


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def switch() -> Iterator[Switch]:
    key = uuid.uuid4().hex
    sw = Switch()
    _SWITCHES[key] = sw
    sw.seen["run"] = key
    yield sw
    sw.released.set()
    del _SWITCHES[key]


@pytest.fixture
def app(store_url: str) -> Iterator[Tasker]:
    settings = Settings.load(
        {"maintenance_interval_s": 0.02, "poll_interval_s": 0.05, "jitter_enabled": False},
        environ={},
    )
    tasker = Tasker(store_url, settings=settings)
    for text in (REPAIRABLE, PARALLEL, ROUTED):
        tasker.register_template(load_template_text(text))
    for handler in (Fetch, Use, Ok, Slow):
        tasker.registry.register(handler.handler_name, handler)
    tasker.start()
    yield tasker
    tasker.close()


def _now() -> datetime:
    return datetime.now(UTC)


def wait_for(app: Tasker, task_uuid: str, done: Callable[[TaskView], bool]) -> TaskView:
    """Poll the task until ``done`` holds; fail with its last view after ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    view = app.get_task(task_uuid)
    while not done(view):
        if time.monotonic() > deadline:
            pytest.fail(f"task did not get there in {WAIT_S}s: {view.to_dict()}")
        time.sleep(0.02)
        view = app.get_task(task_uuid)
    return view


def in_state(*states: TaskState) -> Callable[[TaskView], bool]:
    return lambda view: view.state in {s.value for s in states}


def failed_task(app: Tasker, switch: Switch, name: str = "repairable") -> TaskView:
    task_uuid = app.create_task(name, namespace="ops", context={"run": switch.seen["run"]})
    return wait_for(app, task_uuid, in_state(TaskState.ERROR))


def counts(app: Tasker) -> dict[str, int]:
    with app.store.read() as tx:
        return tx.table_counts()


# -- the stories ---------------------------------------------------------------------------------


def test_reset_for_retry_lets_a_given_up_task_resume_and_complete(
    app: Tasker, switch: Switch
) -> None:
    task = failed_task(app, switch)
    fetch = task.steps["fetch"]
    assert fetch.state == StepState.ERROR.value
    assert "use" in task.steps
    assert task.steps["use"].state == StepState.PENDING.value
    with app.store.read() as tx:
        pending = list_dlq_entries(tx, resolution_status="pending")
        entry = dlq_entry_for_task(tx, task.task_uuid)
    assert [e.task_uuid for e in pending] == [task.task_uuid]
    assert entry is not None
    assert entry.dlq_reason == "max_retries_exceeded"

    switch.broken = False
    with app.store.transaction() as tx:
        outcome = reset_step_for_retry(
            tx, task.task_uuid, fetch.step_uuid, _now(), reset_by="ops@example", reason="fixed"
        )
    assert outcome.resumed
    assert outcome.step_state is StepState.PENDING

    done = wait_for(app, task.task_uuid, in_state(TaskState.COMPLETE, TaskState.ERROR))
    assert done.state == TaskState.COMPLETE.value
    assert done.steps["use"].result == {"fetched": {"value": 42}}
    assert switch.seen["fetch_retry_count"] == 0  # attempts were reset to 0
    assert done.steps["fetch"].attempts == 1

    with app.store.read() as tx:
        task_rows = tx.task_transitions(task.task_uuid)
        step_rows = tx.step_transitions(fetch.step_uuid)
    resume = [r for r in task_rows if r.event == "resume"]
    assert len(resume) == 1
    assert resume[0].from_state == TaskState.ERROR.value
    assert resume[0].metadata["reset_by"] == "ops@example"
    reset = [r for r in step_rows if r.event == "reset_for_retry"]
    assert [(r.from_state, r.metadata["reason"]) for r in reset] == [("error", "fixed")]


def test_a_second_reset_is_refused_and_writes_nothing(app: Tasker, switch: Switch) -> None:
    task = failed_task(app, switch)
    step_uuid = task.steps["fetch"].step_uuid
    app.stop()  # no worker moves anything between the two calls
    with app.store.transaction() as tx:
        reset_step_for_retry(tx, task.task_uuid, step_uuid, _now(), reset_by="a", reason="r")
    before = counts(app)
    with (
        pytest.raises(IllegalTransition, match="only a step in error can be reset"),
        app.store.transaction() as tx,
    ):
        reset_step_for_retry(tx, task.task_uuid, step_uuid, _now(), reset_by="a", reason="r")
    assert counts(app) == before


def test_complete_manually_gives_dependents_the_operator_result(
    app: Tasker, switch: Switch
) -> None:
    task = failed_task(app, switch)
    fetch_uuid = task.steps["fetch"].step_uuid
    app.stop()  # no worker moves anything between the first and the second call
    with app.store.transaction() as tx:
        outcome = complete_step_manually(
            tx,
            task.task_uuid,
            fetch_uuid,
            _now(),
            result={"value": 7},
            metadata={"ticket": "OPS-1"},
            completed_by="ops@example",
            reason="entered by hand",
        )
    assert outcome.step_state is StepState.COMPLETE
    before = counts(app)
    with pytest.raises(IllegalTransition, match="already complete"), app.store.transaction() as tx:
        complete_step_manually(
            tx, task.task_uuid, fetch_uuid, _now(), result={}, completed_by="b", reason="r"
        )
    assert counts(app) == before

    app.start()
    done = wait_for(app, task.task_uuid, in_state(TaskState.COMPLETE, TaskState.ERROR))
    assert done.state == TaskState.COMPLETE.value
    assert switch.seen["use_saw"] == {"value": 7}
    with app.store.read() as tx:
        stored = tx.get_step(fetch_uuid)
    assert stored is not None
    assert stored.results is not None
    assert stored.results["success"] is True
    assert stored.results["metadata"] == {
        "execution_time_ms": 0,
        "manually_completed": True,
        "completed_by": "ops@example",
        "completion_reason": "entered by hand",
        "custom": {"ticket": "OPS-1"},
    }


def test_resolve_manually_satisfies_dependents_without_a_result(
    app: Tasker, switch: Switch
) -> None:
    task = failed_task(app, switch)
    fetch_uuid = task.steps["fetch"].step_uuid
    app.stop()
    with app.store.transaction() as tx:
        resolve_step_manually(
            tx, task.task_uuid, fetch_uuid, _now(), resolved_by="ops", reason="not needed"
        )
    before = counts(app)
    with (
        pytest.raises(IllegalTransition, match="already resolved_manually"),
        app.store.transaction() as tx,
    ):
        resolve_step_manually(tx, task.task_uuid, fetch_uuid, _now(), resolved_by="o", reason="")
    assert counts(app) == before

    app.start()
    done = wait_for(app, task.task_uuid, in_state(TaskState.COMPLETE, TaskState.ERROR))
    assert done.state == TaskState.COMPLETE.value
    assert done.steps["fetch"].state == StepState.RESOLVED_MANUALLY.value
    assert "use_saw" in switch.seen
    assert switch.seen["use_saw"] is None


def test_a_blocked_task_resumes_while_another_step_is_still_running(
    app: Tasker, switch: Switch
) -> None:
    task_uuid = app.create_task("parallel", namespace="ops", context={"run": switch.seen["run"]})
    blocked = wait_for(app, task_uuid, in_state(TaskState.BLOCKED_BY_FAILURES))
    assert blocked.steps["fetch"].state == StepState.ERROR.value
    switch.broken = False
    with app.store.transaction() as tx:
        outcome = reset_step_for_retry(
            tx, task_uuid, blocked.steps["fetch"].step_uuid, _now(), reset_by="o", reason="r"
        )
    assert outcome.resumed
    assert outcome.task_state is not TaskState.BLOCKED_BY_FAILURES
    switch.released.set()
    done = wait_for(app, task_uuid, in_state(TaskState.COMPLETE, TaskState.ERROR))
    assert done.state == TaskState.COMPLETE.value
    with app.store.read() as tx:
        assert dlq_entry_for_task(tx, task_uuid) is None  # it never gave up


def test_a_blocked_task_can_be_resolved_or_given_up_by_an_operator(
    app: Tasker, switch: Switch
) -> None:
    resolved = app.create_task("parallel", namespace="ops", context={"run": switch.seen["run"]})
    given_up = app.create_task("parallel", namespace="ops", context={"run": switch.seen["run"]})
    for task_uuid in (resolved, given_up):
        wait_for(app, task_uuid, in_state(TaskState.BLOCKED_BY_FAILURES))
    with app.store.transaction() as tx:
        state = resolve_task_manually(tx, resolved, _now(), resolved_by="o", reason="done by hand")
    assert state is TaskState.RESOLVED_MANUALLY
    with app.store.transaction() as tx:
        state = give_up_task(tx, given_up, _now(), given_up_by="o", reason="not worth it")
    assert state is TaskState.ERROR
    with app.store.read() as tx:
        entry = dlq_entry_for_task(tx, given_up)
        assert dlq_entry_for_task(tx, resolved) is None
    assert entry is not None
    assert entry.metadata is not None
    assert entry.metadata["given_up_by"] == "o"

    with (
        pytest.raises(IllegalTransition, match="not blocked_by_failures"),
        app.store.transaction() as tx,
    ):
        give_up_task(tx, resolved, _now(), given_up_by="o", reason="again")
    switch.released.set()
    for task_uuid, state in ((resolved, TaskState.RESOLVED_MANUALLY), (given_up, TaskState.ERROR)):
        view = wait_for(app, task_uuid, lambda v: v.steps["slow"].state == "complete")
        assert view.state == state.value  # a late result does not move a closed task


def test_step_actions_check_that_task_and_step_exist_and_belong_together(
    app: Tasker, switch: Switch
) -> None:
    first = failed_task(app, switch)
    second = failed_task(app, switch)
    step_of_second = second.steps["fetch"].step_uuid
    with pytest.raises(TaskNotFound), app.store.transaction() as tx:
        reset_step_for_retry(tx, str(uuid.uuid4()), step_of_second, _now(), reset_by="o", reason="")
    with pytest.raises(StepNotFound), app.store.transaction() as tx:
        reset_step_for_retry(tx, first.task_uuid, step_of_second, _now(), reset_by="o", reason="")
    with pytest.raises(StepNotFound), app.store.transaction() as tx:
        resolve_step_manually(
            tx, first.task_uuid, str(uuid.uuid4()), _now(), resolved_by="o", reason=""
        )


def test_a_cancelled_task_cannot_be_repaired(app: Tasker, switch: Switch) -> None:
    task_uuid = app.create_task("parallel", namespace="ops", context={"run": switch.seen["run"]})
    wait_for(app, task_uuid, in_state(TaskState.BLOCKED_BY_FAILURES))
    app.cancel_task(task_uuid)
    view = app.get_task(task_uuid)
    before = counts(app)
    with pytest.raises(IllegalTransition, match="is cancelled"), app.store.transaction() as tx:
        complete_step_manually(
            tx,
            task_uuid,
            view.steps["fetch"].step_uuid,
            _now(),
            result={},
            completed_by="o",
            reason="",
        )
    assert counts(app) == before


def test_completing_a_decision_manually_applies_the_operator_outcome(
    app: Tasker, switch: Switch
) -> None:
    task = failed_task(app, switch, "routed")
    assert set(task.steps) == {"start", "route"}
    route_uuid = task.steps["route"].step_uuid
    app.stop()
    before = counts(app)
    with (
        pytest.raises(IllegalTransition, match="nope"),
        app.store.transaction() as tx,
    ):
        complete_step_manually(
            tx,
            task.task_uuid,
            route_uuid,
            _now(),
            result={"decision_point_outcome": {"type": "create_steps", "step_names": ["nope"]}},
            completed_by="o",
            reason="route by hand",
            templates=app.templates,
        )
    assert counts(app) == before

    with app.store.transaction() as tx:
        complete_step_manually(
            tx,
            task.task_uuid,
            route_uuid,
            _now(),
            result={"decision_point_outcome": {"type": "create_steps", "step_names": ["branch_a"]}},
            completed_by="o",
            reason="route by hand",
            templates=app.templates,
        )
    app.start()
    done = wait_for(app, task.task_uuid, in_state(TaskState.COMPLETE, TaskState.ERROR))
    assert done.state == TaskState.COMPLETE.value
    assert set(done.steps) == {"start", "route", "branch_a"}
    assert done.steps["branch_a"].state == StepState.COMPLETE.value
