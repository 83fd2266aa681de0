"""What a task leaves behind (states.md §3), cancellation (execution.md §11) and idempotent
creation (execution.md §3, reliability.md R6), on every backend."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from tasker.errors import DuplicateTask, IllegalTransition
from tasker.runtime import Tasker, TaskView
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import (
    WAIT_S,
    MakeTasker,
    audit_rows,
    dlq_rows,
    run_task,
    step_trail,
    table_counts,
    task_trail,
)

# The allowed task transitions (states.md §1.2, without the legacy rows), as (from, event, to).
TASK_TRANSITIONS = {
    ("pending", "start", "initializing"),
    ("initializing", "ready_steps_found", "enqueuing_steps"),
    ("initializing", "no_steps_found", "complete"),
    ("initializing", "no_dependencies_ready", "waiting_for_dependencies"),
    ("enqueuing_steps", "steps_enqueued", "steps_in_process"),
    ("enqueuing_steps", "enqueue_failed", "error"),
    ("steps_in_process", "step_completed", "evaluating_results"),
    ("steps_in_process", "all_steps_completed", "evaluating_results"),
    ("steps_in_process", "step_failed", "waiting_for_retry"),
    ("evaluating_results", "all_steps_successful", "complete"),
    ("evaluating_results", "ready_steps_found", "enqueuing_steps"),
    ("evaluating_results", "no_dependencies_ready", "waiting_for_dependencies"),
    ("evaluating_results", "permanent_failure", "blocked_by_failures"),
    ("waiting_for_dependencies", "dependencies_ready", "evaluating_results"),
    ("waiting_for_retry", "retry_ready", "enqueuing_steps"),
    ("blocked_by_failures", "give_up", "error"),
    ("blocked_by_failures", "manual_resolution", "resolved_manually"),
}
NON_TERMINAL_TASK_STATES = {
    "pending",
    "initializing",
    "enqueuing_steps",
    "steps_in_process",
    "evaluating_results",
    "waiting_for_dependencies",
    "waiting_for_retry",
    "blocked_by_failures",
}
SUCCESSFUL_STEP = ["pending", "enqueued", "in_progress", "enqueued_for_orchestration", "complete"]
FAILED_ATTEMPT = ["enqueued", "in_progress", "enqueued_as_error_for_orchestration"]


def assert_task_trail_is_well_formed(app: Tasker, task_uuid: str) -> list[str]:
    """Check the task's transition rows against states.md §3.1; return its to-states."""
    trail = task_trail(app, task_uuid)
    assert [t.sort_key for t in trail] == list(range(1, len(trail) + 1))
    assert (trail[0].from_state, trail[0].to_state) == (None, "pending")
    assert [t.most_recent for t in trail] == [False] * (len(trail) - 1) + [True]
    for previous, row in itertools.pairwise(trail):
        assert row.from_state == previous.to_state, f"row {row.sort_key} does not chain"
        allowed = (row.from_state, row.event, row.to_state) in TASK_TRANSITIONS or (
            row.event == "cancel"
            and row.from_state in NON_TERMINAL_TASK_STATES
            and row.to_state == "cancelled"
        )
        assert allowed, f"illegal transition {row.from_state} -{row.event}-> {row.to_state}"
    return [t.to_state for t in trail]


def assert_step_trail_is_well_formed(app: Tasker, step_uuid: str) -> list[str]:
    trail = step_trail(app, step_uuid)
    assert [t.sort_key for t in trail] == list(range(1, len(trail) + 1))
    assert trail[0].from_state is None
    assert [t.most_recent for t in trail] == [False] * (len(trail) - 1) + [True]
    for previous, row in itertools.pairwise(trail):
        assert row.from_state == previous.to_state
    return [t.to_state for t in trail]


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


# -- the state trail -----------------------------------------------------------------------------


def test_completed_chain_leaves_a_contiguous_legal_task_trail(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain")

    view = run_task(app, "linear_chain", recorder.context(seed=2))

    assert view.state == "complete"
    one_step = ["steps_in_process", "evaluating_results"]
    assert assert_task_trail_is_well_formed(app, view.task_uuid) == [
        "pending",
        "initializing",
        "enqueuing_steps",
        *one_step,
        *["enqueuing_steps", *one_step] * 3,
        "complete",
    ]


def test_each_successful_step_moves_through_the_five_states_once(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("diamond")

    view = run_task(app, "diamond", recorder.context(seed=3))

    assert view.state == "complete"
    for name, step in view.steps.items():
        assert assert_step_trail_is_well_formed(app, step.step_uuid) == SUCCESSFUL_STEP, name
        audits = audit_rows(app, step.step_uuid)
        assert [(int(r["attempt"]), bool(r["success"])) for r in audits] == [(1, True)], name


def test_retried_step_trail_and_one_audit_row_per_attempt(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("flaky")

    view = run_task(app, "flaky", recorder.context(fail_times=2))

    step_uuid = view.steps["flaky"].step_uuid
    retry = [*FAILED_ATTEMPT, "waiting_for_retry", "pending"]
    assert assert_step_trail_is_well_formed(app, step_uuid) == [
        "pending",
        *retry,
        *retry,
        *SUCCESSFUL_STEP[1:],
    ]
    audits = audit_rows(app, step_uuid)
    assert [(int(r["attempt"]), bool(r["success"])) for r in audits] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert len({r["workflow_step_transition_uuid"] for r in audits}) == 3
    # Every failed attempt left its error type and message on its waiting_for_retry row (R5.2).
    errors = [
        (t.metadata["error"]["error_type"], t.metadata["error"]["message"])
        for t in step_trail(app, step_uuid)
        if t.to_state == "waiting_for_retry"
    ]
    assert errors == [
        ("retryable_error", "flaky: attempt 1 fails"),
        ("retryable_error", "flaky: attempt 2 fails"),
    ]


def test_permanently_failed_task_is_blocked_then_gives_up(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("raiser")

    view = run_task(app, "raiser", recorder.context(**{"raise": "permanent"}))

    trail = assert_task_trail_is_well_formed(app, view.task_uuid)
    assert trail[-3:] == ["evaluating_results", "blocked_by_failures", "error"]
    assert assert_step_trail_is_well_formed(app, view.steps["raiser"].step_uuid) == [
        "pending",
        *FAILED_ATTEMPT,
        "error",
    ]
    assert len(dlq_rows(app)) == 1


def test_failure_blocks_new_dispatch_and_the_task_gives_up_once_in_flight_steps_finish(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("failing_branch", concurrency=2)
    task_uuid = app.create_task(
        "failing_branch", namespace="engine", context=recorder.context(**{"raise": "permanent"})
    )

    wait_until(lambda: app.get_task(task_uuid).state == "blocked_by_failures", "blocked")
    blocked = app.get_task(task_uuid)
    recorder.gate("blocker").set()
    wait_until(lambda: app.get_task(task_uuid).state == "error", "the task gives up")
    final = app.get_task(task_uuid)

    assert blocked.steps["held"].state == "in_progress"  # still running when the task blocked
    assert final.state == "error"
    assert {name: (step.state, step.attempts) for name, step in final.steps.items()} == {
        "doomed": ("error", 1),
        "held": ("complete", 1),  # an in-flight result is still stored on its step
        "after_held": ("pending", 0),  # ready, but a blocked task dispatches nothing new
        "join": ("pending", 0),
    }
    assert final.steps["held"].result == {"late": True}
    assert recorder.marks_of(task_uuid, "after_held") == []
    trail = assert_task_trail_is_well_formed(app, task_uuid)
    assert trail.count("blocked_by_failures") == 1
    assert trail[-2:] == ["blocked_by_failures", "error"]
    assert [row["task_uuid"] for row in dlq_rows(app)] == [task_uuid]


# -- cancellation --------------------------------------------------------------------------------


def test_cancelled_task_cancels_unfinished_steps_and_refuses_the_late_result(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("cancellable", "rendezvous", concurrency=2)
    task_uuid = app.create_task("cancellable", namespace="engine", context=recorder.context())

    def blocker_running_and_quick_done() -> bool:
        steps = app.get_task(task_uuid).steps
        return steps["quick"].state == "complete" and steps["blocker"].state == "in_progress"

    wait_until(blocker_running_and_quick_done, "blocker runs and quick is complete")
    cancelled = app.cancel_task(task_uuid)
    recorder.gate("blocker").set()  # the handler now returns a success nobody may record
    # Both worker threads must be free for a rendezvous task to finish, so once it has, the
    # blocker's thread has submitted its late result.
    proof = run_task(app, "rendezvous", recorder.context(seed=3))

    assert proof.state == "complete"
    assert recorder.marks_of(task_uuid, "blocker", "finish"), "the blocker never returned"
    assert cancelled.state == "cancelled"
    final = app.get_task(task_uuid)
    assert final.state == "cancelled"
    assert {name: step.state for name, step in final.steps.items()} == {
        "quick": "complete",
        "blocker": "cancelled",
        "after": "cancelled",
    }
    assert final.steps["quick"].result == {"quick": True}
    assert final.steps["blocker"].result is None
    blocker_trail = assert_step_trail_is_well_formed(app, final.steps["blocker"].step_uuid)
    assert blocker_trail == ["pending", "enqueued", "in_progress", "cancelled"]
    assert audit_rows(app, final.steps["blocker"].step_uuid) == []
    assert recorder.marks_of(task_uuid, "after") == []
    assert assert_task_trail_is_well_formed(app, task_uuid)[-1] == "cancelled"


def test_cancelling_a_finished_task_is_refused_and_changes_nothing(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain")
    view = run_task(app, "linear_chain", recorder.context(seed=2))
    before = table_counts(app)

    with pytest.raises(IllegalTransition, match="already complete"):
        app.cancel_task(view.task_uuid)

    assert table_counts(app) == before
    assert app.get_task(view.task_uuid).state == "complete"


# -- idempotent creation -------------------------------------------------------------------------


def created(app: Tasker, name: str, context: dict[str, Any], **fields: Any) -> str:
    return app.create_task(name, namespace="engine", context=context, **fields)


def test_same_context_twice_is_a_duplicate_naming_the_first_task(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain", start=False)
    first = created(app, "linear_chain", recorder.context(seed=2, meta={"a": 1, "b": [1, 2]}))
    before = table_counts(app)

    with pytest.raises(DuplicateTask) as raised:
        # Same JSON with keys in another order (at both levels): the same identity.
        created(
            app, "linear_chain", {"meta": {"b": [1, 2], "a": 1}, "seed": 2, "run": recorder.key}
        )

    assert raised.value.task_uuid == first
    assert first in str(raised.value)
    assert table_counts(app) == before


def test_different_array_order_is_a_different_task(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain", start=False)

    first = created(app, "linear_chain", recorder.context(seed=2, items=[1, 2]))
    second = created(app, "linear_chain", recorder.context(seed=2, items=[2, 1]))

    assert first != second
    assert table_counts(app)["tasks"] == 2


def test_always_unique_template_creates_a_task_every_time(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("unique_every_time", start=False)

    first = created(app, "unique_every_time", recorder.context())
    second = created(app, "unique_every_time", recorder.context())

    assert first != second
    assert table_counts(app)["tasks"] == 2


def test_idempotency_key_decides_whatever_the_context(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain", "caller_keyed", start=False)
    first = created(app, "linear_chain", recorder.context(seed=2), idempotency_key="order-7")

    with pytest.raises(DuplicateTask) as raised:
        created(app, "linear_chain", recorder.context(seed=5), idempotency_key="order-7")
    other_key = created(app, "linear_chain", recorder.context(seed=2), idempotency_key="order-8")
    keyed = created(app, "caller_keyed", recorder.context(), idempotency_key="order-7")
    with pytest.raises(DuplicateTask) as keyed_again:
        created(app, "caller_keyed", recorder.context(x=1), idempotency_key="order-7")

    assert raised.value.task_uuid == first
    assert len({first, other_key, keyed}) == 3  # keys live in each template's own space
    assert keyed_again.value.task_uuid == keyed
    assert table_counts(app)["tasks"] == 3


def test_duplicate_of_a_finished_task_is_still_refused(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain")
    view: TaskView = run_task(app, "linear_chain", recorder.context(seed=2))
    assert view.state == "complete"

    with pytest.raises(DuplicateTask) as raised:
        created(app, "linear_chain", recorder.context(seed=2))

    assert raised.value.task_uuid == view.task_uuid
