"""R3.1: every connection of the engine is terminated while a handler runs; the engine stays up,
redoes the rolled-back transactions on new connections, and the step counts one attempt."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from tasker.config import Settings
from tasker.runtime import Tasker
from tasker.templates import load_template_text
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

pytestmark = pytest.mark.postgres

TEMPLATE = """
name: conn_loss
namespace_name: conn_loss
version: "1.0.0"
identity_strategy: always_unique
steps:
  - name: cut
    handler: {callable: conn_loss.cut}
  - name: after
    dependencies: [cut]
    handler: {callable: conn_loss.after}
"""

RUNS: dict[str, int] = {}
_RUNS_LOCK = threading.Lock()


def _count(name: str) -> None:
    with _RUNS_LOCK:
        RUNS[name] = RUNS.get(name, 0) + 1


def terminate_other_backends(dsn: str) -> int:
    """Terminate every other connection to the database (the engine's pool and listener)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


class Cut(StepHandler):
    handler_name = "conn_loss.cut"

    def call(self, context: StepContext) -> StepHandlerResult:
        _count("cut")
        killed = terminate_other_backends(str(context.get_input("dsn")))
        return self.success({"terminated": killed})


class After(StepHandler):
    handler_name = "conn_loss.after"

    def call(self, context: StepContext) -> StepHandlerResult:
        _count("after")
        return self.success({"seen": context.get_dependency_field("cut", "terminated")})


def test_terminated_connections_are_replaced_and_the_result_is_recorded_once(
    fresh_pg_dsn: str,
) -> None:
    RUNS.clear()
    fast: dict[str, Any] = {
        "database_url": fresh_pg_dsn,
        "env": "test",
        "concurrency": 2,
        "poll_interval_s": 0.05,
        "maintenance_interval_s": 0.05,
        "jitter_enabled": False,
        "shutdown_grace_s": 2.0,
    }
    with Tasker(settings=Settings(**fast), handlers=[sys.modules[__name__]]) as app:
        app.register_template(load_template_text(TEMPLATE, "conn_loss.yaml"))
        task_uuid = app.create_task(
            "conn_loss", namespace="conn_loss", context={"dsn": fresh_pg_dsn}
        )
        view = app.wait(task_uuid, timeout_s=30)

    assert view.state == "complete"
    assert view.steps["cut"].result["terminated"] >= 1, "the engine's connections were cut"
    assert view.steps["cut"].attempts == 1, "the result was recorded, not lost to a lease sweep"
    assert view.steps["after"].result == {"seen": view.steps["cut"].result["terminated"]}
    assert RUNS == {"cut": 1, "after": 1}
