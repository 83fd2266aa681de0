"""The embedded runtime runs a task to completion on PostgreSQL (worker threads, each
transaction on its own pooled connection, wake-ups through NOTIFY)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from tasker.config import Settings
from tasker.runtime import Tasker, TaskView
from tasker.templates import load_template_text
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

pytestmark = pytest.mark.postgres

LINEAR = """
name: pg_smoke_linear
namespace_name: pg_smoke
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: start
    handler: {callable: pg_smoke.start}
  - name: double
    dependencies: [start]
    handler: {callable: pg_smoke.double}
  - name: add_one
    dependencies: [double]
    handler: {callable: pg_smoke.add_one}
"""


class Start(StepHandler):
    handler_name = "pg_smoke.start"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({"value": context.get_input("n")})


class Double(StepHandler):
    handler_name = "pg_smoke.double"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({"value": 2 * context.get_dependency_field("start", "value")})


class AddOne(StepHandler):
    handler_name = "pg_smoke.add_one"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({"value": 1 + context.get_dependency_field("double", "value")})


def settings(url: str) -> Settings:
    fast: dict[str, Any] = {
        "database_url": url,
        "env": "test",
        "concurrency": 4,
        "poll_interval_s": 0.05,
        "maintenance_interval_s": 0.05,
        "jitter_enabled": False,
        "shutdown_grace_s": 2.0,
    }
    return Settings(**fast)


def test_a_linear_task_runs_to_complete_on_postgres(fresh_pg_dsn: str) -> None:
    with Tasker(settings=settings(fresh_pg_dsn), handlers=[sys.modules[__name__]]) as app:
        app.register_template(load_template_text(LINEAR, "pg_smoke_linear.yaml"))
        task_uuids = [
            app.create_task("pg_smoke_linear", namespace="pg_smoke", context={"n": n})
            for n in range(5)
        ]
        views = [app.wait(task_uuid, timeout_s=30) for task_uuid in task_uuids]
        with app.store.read() as tx:
            histories = [tx.task_transitions(task_uuid) for task_uuid in task_uuids]

    assert app.store.backend == "postgres"
    assert [view.state for view in views] == ["complete"] * 5
    assert [view.steps["add_one"].result for view in views] == [
        {"value": 2 * n + 1} for n in range(5)
    ]
    assert {step.attempts for view in views for step in view.steps.values()} == {1}
    for rows in histories:
        assert rows[-1].to_state == "complete"
        assert [r.most_recent for r in rows].count(True) == 1


def test_a_client_waiting_on_a_task_is_woken_by_the_worker_process_that_settles_it(
    fresh_pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two engines on one database stand for two processes (each store has its own processor
    uuid and LISTEN connection). With the re-read fallback pushed to a minute, only the
    ``tasker_settled`` notification can end the client's wait within its timeout."""
    import tasker.runtime

    monkeypatch.setattr(tasker.runtime, "_WAIT_POLL_S", 60.0)
    worker = Tasker(settings=settings(fresh_pg_dsn), handlers=[sys.modules[__name__]])
    client = Tasker(settings=settings(fresh_pg_dsn))
    template = load_template_text(LINEAR, "pg_smoke_linear.yaml")
    worker.register_template(template)
    client.register_template(template)
    try:
        task_uuid = client.create_task("pg_smoke_linear", namespace="pg_smoke", context={"n": 4})
        # Start the workers only once the client is asleep in wait(), after its first read.
        starter = threading.Timer(0.3, worker.start)
        starter.start()
        views: list[TaskView] = []
        waiter = threading.Thread(target=lambda: views.append(client.wait(task_uuid)), daemon=True)
        waiter.start()
        waiter.join(15)  # a liveness bound, far from both the ~0.5 s run and the 60 s re-read
        starter.join()
        assert not waiter.is_alive(), "the client slept until its re-read: no notification"
    finally:
        worker.close()
        client.close()

    (view,) = views
    assert view.state == "complete"
    assert view.steps["add_one"].result == {"value": 9}
