"""A claim that commits with its transaction (ADR 0020), end to end on both backends.

On PostgreSQL a worker's claim travels with the transaction's COMMIT, so the claims are
committed before the worker reads what their handlers need. If that reading fails, the worker
gives the claims back, as the rollback did before: the steps run again at once, without
spending an attempt, instead of waiting for their leases to expire.
"""

from __future__ import annotations

from typing import Any

import pytest

import tasker.worker.runner as runner
from tasker.config import Settings
from tasker.runtime import Tasker
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import FAST, HANDLERS, WAIT_S, template_path


def test_claims_that_cannot_be_prepared_are_given_back_and_run_again(
    database_url: str, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = runner.build_task_sequence_steps
    failures: list[str] = []

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append("failed")
            raise LookupError("injected: reading the claimed steps' context failed")
        return build(*args, **kwargs)

    monkeypatch.setattr(runner, "build_task_sequence_steps", fail_once)
    # Leases far longer than the wait: only a given-back claim can run again in time.
    settings = Settings.load({**FAST, "concurrency": 1, "lease_timeout_s": 600.0}, environ={})
    app = Tasker(
        database_url,
        settings=settings,
        templates=[template_path("linear_chain")],
        handlers=[HANDLERS],
    ).start()
    try:
        task_uuid = app.create_task(
            "linear_chain", namespace="engine", context=recorder.context(seed=2)
        )
        view = app.wait(task_uuid, WAIT_S)
        first = view.steps["first"]
        with app.store.read() as tx:
            transitions = [(t.from_state, t.to_state) for t in tx.step_transitions(first.step_uuid)]
    finally:
        app.close()

    assert failures == ["failed"]
    assert view.state == "complete"
    assert view.steps["fourth"].result == {"value": 65536}
    assert first.attempts == 1  # the failed preparation spent no attempt
    if app.store.backend == "postgres":  # committed with the claim, then given back
        assert transitions[:6] == [
            (None, "pending"),
            ("pending", "enqueued"),
            ("enqueued", "in_progress"),
            ("in_progress", "waiting_for_retry"),
            ("waiting_for_retry", "pending"),
            ("pending", "enqueued"),
        ]
    else:  # rolled back with the transaction
        assert transitions[:3] == [
            (None, "pending"),
            ("pending", "enqueued"),
            ("enqueued", "in_progress"),
        ]
