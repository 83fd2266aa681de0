"""Read models of the REST API (rest-api.md §4) against real stores, both backends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tasker.config import Settings
from tasker.domain.states import TaskState
from tasker.errors import PermanentError, RetryableError, StepNotFound, TaskNotFound
from tasker.orchestration.queries import (
    list_task_steps,
    list_tasks,
    step_audit_history,
    step_detail,
    task_detail,
    tasks_summary,
)
from tasker.runtime import Tasker, TaskView
from tasker.templates import load_template_text
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

WAIT_S = 15.0

CHAIN = """
name: chain
namespace_name: reads
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: first
    handler: {callable: reads_flaky}
    retry: {max_attempts: 2, backoff: none}
  - name: second
    dependencies: [first]
    handler: {callable: reads_ok}
"""

SOLO = """
name: solo
namespace_name: other
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: only
    handler: {callable: reads_fail}
    retry: {retryable: false, max_attempts: 1}
"""


class Flaky(StepHandler):
    """Fails once with a retryable error, then succeeds."""

    handler_name = "reads_flaky"

    def call(self, context: StepContext) -> StepHandlerResult:
        if not context.is_retry():
            raise RetryableError("try again")
        return self.success({"n": 1})


class Ok(StepHandler):
    handler_name = "reads_ok"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({"n": 2})


class Fail(StepHandler):
    handler_name = "reads_fail"

    def call(self, context: StepContext) -> StepHandlerResult:
        raise PermanentError("no")


@pytest.fixture
def app(store_url: str) -> Iterator[Tasker]:
    settings = Settings.load(
        {"maintenance_interval_s": 0.02, "poll_interval_s": 0.05, "jitter_enabled": False},
        environ={},
    )
    tasker = Tasker(store_url, settings=settings)
    tasker.register_template(load_template_text(CHAIN))
    tasker.register_template(load_template_text(SOLO))
    for handler in (Flaky, Ok, Fail):
        tasker.registry.register(handler.handler_name, handler)
    yield tasker
    tasker.close()


def settle(app: Tasker, task_uuid: str) -> TaskView:
    deadline = time.monotonic() + WAIT_S
    while True:
        view = app.get_task(task_uuid)
        if TaskState(view.state).is_terminal:
            return view
        if time.monotonic() > deadline:
            pytest.fail(f"task did not finish in {WAIT_S}s: {view.to_dict()}")
        time.sleep(0.02)


def test_list_tasks_filters_pages_and_counts_steps(app: Tasker) -> None:
    chains = [app.create_task("chain", namespace="reads", initiator=f"u{i}") for i in range(3)]
    solo = app.create_task("solo", namespace="other")
    with app.store.read() as tx:
        everything, total = list_tasks(tx)
        page, paged_total = list_tasks(tx, limit=2, offset=1)
        in_reads, reads_total = list_tasks(tx, namespace="reads")
        by_initiator, _ = list_tasks(tx, initiator="u1")
        by_name, _ = list_tasks(tx, name="solo")
        none, none_total = list_tasks(tx, status="complete")
    newest_first = [solo, *reversed(chains)]
    assert [t.task_uuid for t in everything] == newest_first
    assert total == paged_total == 4
    assert [t.task_uuid for t in page] == newest_first[1:3]
    assert reads_total == 3
    assert {t.task_uuid for t in in_reads} == set(chains)
    assert [t.task_uuid for t in by_initiator] == [chains[1]]
    assert [t.task_uuid for t in by_name] == [solo]
    assert (none, none_total) == ([], 0)

    chain = everything[1]
    assert chain.status == TaskState.STEPS_IN_PROCESS.value
    assert (chain.total_steps, chain.pending_steps, chain.ready_steps) == (2, 1, 0)
    assert chain.execution_status == "processing"  # the first step is enqueued, no worker yet
    assert chain.recommended_action == "wait_for_completion"
    assert (chain.completion_percentage, chain.health_status) == (0.0, "healthy")
    assert chain.steps == ()


def test_task_detail_reports_steps_with_their_readiness(app: Tasker) -> None:
    task_uuid = app.create_task("chain", namespace="reads", context={"k": "v"})
    with app.store.read() as tx:
        detail = task_detail(tx, task_uuid)
    assert detail.context == {"k": "v"}
    assert (detail.namespace, detail.name, detail.version) == ("reads", "chain", "1.0.0")
    first, second = detail.steps
    assert (first.name, first.current_state, first.total_parents) == ("first", "enqueued", 0)
    assert first.dependencies_satisfied
    assert not first.ready_for_execution  # already enqueued
    assert (second.name, second.current_state) == ("second", "pending")
    assert (second.total_parents, second.completed_parents) == (1, 0)
    assert not second.dependencies_satisfied
    assert second.retry_eligible
    assert not second.ready_for_execution
    data = detail.to_dict()
    assert data["steps"][1]["name"] == "second"
    assert isinstance(data["created_at"], str)


def test_a_finished_task_reads_complete_with_an_audit_trail_per_attempt(app: Tasker) -> None:
    app.start()
    task_uuid = app.create_task("chain", namespace="reads")
    assert settle(app, task_uuid).state == TaskState.COMPLETE.value
    with app.store.read() as tx:
        detail = task_detail(tx, task_uuid)
        first = step_detail(tx, task_uuid, detail.steps[0].step_uuid)
        audit = step_audit_history(tx, task_uuid, first.step_uuid)
    assert (detail.execution_status, detail.completion_percentage) == ("all_complete", 100.0)
    assert detail.completed_at is not None
    assert (first.current_state, first.attempts, first.completed_parents) == ("complete", 2, 0)
    assert first.completed_at is not None
    assert first.last_failure_at is not None
    assert first.results is not None
    assert first.results["result"] == {"n": 1}

    assert [(a.attempt, a.success) for a in audit] == [(1, False), (2, True)]
    assert [a.to_state for a in audit] == [
        "enqueued_as_error_for_orchestration",
        "enqueued_for_orchestration",
    ]
    assert all(a.from_state == "in_progress" and a.worker_uuid for a in audit)
    assert audit[0].result is None
    assert audit[1].result is not None
    assert audit[1].result["result"] == {"n": 1}
    assert "result" not in audit[0].to_dict()  # optional nulls are left out


def test_a_failed_task_reads_blocked(app: Tasker) -> None:
    app.start()
    task_uuid = app.create_task("solo", namespace="other")
    assert settle(app, task_uuid).state == TaskState.ERROR.value
    with app.store.read() as tx:
        detail = task_detail(tx, task_uuid)
    assert (detail.execution_status, detail.recommended_action) == (
        "blocked_by_failures",
        "handle_failures",
    )
    assert (detail.health_status, detail.failed_steps) == ("blocked", 1)


def test_lookups_of_unknown_or_foreign_ids(app: Tasker) -> None:
    one = app.create_task("chain", namespace="reads")
    other = app.create_task("solo", namespace="other")
    with app.store.read() as tx:
        foreign_step = list_task_steps(tx, other)[0].step_uuid
        assert list_task_steps(tx, str(uuid.uuid4())) == []
        with pytest.raises(TaskNotFound):
            task_detail(tx, str(uuid.uuid4()))
        with pytest.raises(StepNotFound):
            step_detail(tx, one, foreign_step)
        with pytest.raises(StepNotFound):
            step_audit_history(tx, one, foreign_step)


def test_tasks_summary_counts_every_state(app: Tasker) -> None:
    app.create_task("chain", namespace="reads")
    app.cancel_task(app.create_task("chain", namespace="reads"))
    with app.store.read() as tx:
        summary = tasks_summary(tx)
    assert set(summary) == {s.value for s in TaskState}
    assert summary["steps_in_process"] == 1
    assert summary["cancelled"] == 1
    assert sum(summary.values()) == 2
