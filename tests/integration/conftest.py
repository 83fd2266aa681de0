"""Fixtures of the engine's end-to-end tests: a database per test, a recorder, started engines.

- ``database_url``: a fresh store for this test, once per backend (SQLite, PostgreSQL).
- ``recorder``: where the handlers of tests/fixtures/handlers/engine_handlers.py report.
- ``make_tasker``: builds (and starts) a ``Tasker`` on ``database_url`` with short timings and
  the engine templates; every engine it made is stopped and closed after the test.
- ``make_dynamic``: the same with the decision, batch and checkpoint templates
  (tests/fixtures/templates/dynamic) and tests/fixtures/handlers/dynamic_handlers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasker.config import Settings
from tasker.domain.model import StepRecord, TransitionRecord
from tasker.runtime import Tasker, TaskView
from tests.fixtures.handlers.engine_handlers import Recorder, open_recorder

HANDLERS = "tests.fixtures.handlers.engine_handlers"
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "templates" / "engine"

FAST: dict[str, Any] = {
    "env": "test",
    "concurrency": 4,
    "maintenance_interval_s": 0.02,
    "poll_interval_s": 0.05,
    "jitter_enabled": False,
    "shutdown_grace_s": 2.0,
    "step_timeout_s": 10.0,
}
"""Settings for tests: short polling, no jitter (so backoffs are exact)."""

WAIT_S = 15.0
"""Longest a test waits for a task to settle; well above what any of them needs."""


def template_path(name: str) -> Path:
    """The engine fixture template ``name`` (without ``.yaml``)."""
    return TEMPLATE_DIR / f"{name}.yaml"


@pytest.fixture
def database_url(store_url: str) -> str:
    """URL of a new, empty store for this test, once per backend."""
    return store_url


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A recorder for this test's handlers; every gate opens when the test ends."""
    with open_recorder() as rec:
        yield rec


MakeTasker = Callable[..., Tasker]


@pytest.fixture
def make_tasker(database_url: str, recorder: Recorder) -> Iterator[MakeTasker]:
    """``make_tasker("diamond", ..., start=True, **settings)`` → a Tasker on ``database_url``."""
    made: list[Tasker] = []

    def make(*templates: str, start: bool = True, **overrides: Any) -> Tasker:
        settings = Settings.load({**FAST, **overrides}, environ={})
        app = Tasker(
            database_url,
            settings=settings,
            templates=[template_path(t) for t in templates],
            handlers=[HANDLERS],
        )
        made.append(app)
        if start:
            app.start()
        return app

    yield make
    recorder.release_all()  # let blocked handlers return before their engine stops
    for app in reversed(made):
        app.close()


# -- helpers ---------------------------------------------------------------------------------------


def run_task(app: Tasker, name: str, context: dict[str, Any], **fields: Any) -> TaskView:
    """Create a task of engine template ``name`` and wait until it settles."""
    task_uuid = app.create_task(name, namespace="engine", context=context, **fields)
    return app.wait(task_uuid, WAIT_S)


def task_trail(app: Tasker, task_uuid: str) -> list[TransitionRecord]:
    with app.store.read() as tx:
        return tx.task_transitions(task_uuid)


def step_trail(app: Tasker, step_uuid: str) -> list[TransitionRecord]:
    with app.store.read() as tx:
        return tx.step_transitions(step_uuid)


def table_counts(app: Tasker) -> dict[str, int]:
    with app.store.read() as tx:
        return tx.table_counts()


def rows(app: Tasker, sql: str) -> list[dict[str, Any]]:
    """All rows of a parameterless query, as dicts (both backends)."""
    with app.store.read() as tx:
        return [dict(row) for row in tx.execute(sql).fetchall()]


def audit_rows(app: Tasker, step_uuid: str) -> list[dict[str, Any]]:
    """The step's ``workflow_step_result_audit`` rows, by attempt."""
    found = rows(
        app,
        "SELECT workflow_step_uuid, workflow_step_transition_uuid, success, attempt"
        " FROM workflow_step_result_audit",
    )
    mine = [r for r in found if str(r["workflow_step_uuid"]) == step_uuid]
    return sorted(mine, key=lambda r: int(r["attempt"]))


def dlq_rows(app: Tasker) -> list[dict[str, Any]]:
    return rows(app, "SELECT task_uuid, dlq_reason, resolution_status FROM dlq_entries")


# -- decisions, batches, checkpoints ---------------------------------------------------------------

DYNAMIC_HANDLERS = "tests.fixtures.handlers.dynamic_handlers"
DYNAMIC_TEMPLATE_DIR = TEMPLATE_DIR.parent / "dynamic"


@pytest.fixture
def make_dynamic(database_url: str) -> Iterator[MakeTasker]:
    """``make_dynamic("csv_totals", ..., **settings)`` → a started Tasker on ``database_url`` with
    templates of tests/fixtures/templates/dynamic and the handlers of dynamic_handlers.py."""
    made: list[Tasker] = []

    def make(*templates: str, start: bool = True, **overrides: Any) -> Tasker:
        settings = Settings.load({**FAST, **overrides}, environ={})
        app = Tasker(
            database_url,
            settings=settings,
            templates=[DYNAMIC_TEMPLATE_DIR / f"{t}.yaml" for t in templates],
            handlers=[DYNAMIC_HANDLERS],
        )
        made.append(app)
        if start:
            app.start()
        return app

    yield make
    for app in reversed(made):
        app.close()


def run_dynamic(
    app: Tasker, name: str, context: dict[str, Any], wait_s: float = WAIT_S
) -> TaskView:
    """Create a task of dynamic template ``name`` and wait until it settles."""
    task_uuid = app.create_task(name, namespace="dynamic", context=context)
    return app.wait(task_uuid, wait_s)


def task_edges(app: Tasker, task_uuid: str) -> set[tuple[str, str, str]]:
    """The task's edges as ``(parent name, child name, edge name)``."""
    with app.store.read() as tx:
        return set(tx.task_edges(task_uuid))


def task_steps(app: Tasker, task_uuid: str) -> dict[str, StepRecord]:
    """The task's step rows by name (with inputs and checkpoint, which ``TaskView`` omits)."""
    with app.store.read() as tx:
        return {step.name: step for step in tx.task_steps(task_uuid)}
