"""Operator actions: repair a failed step, then let its task continue (execution.md §9.3, §4).

Each action runs in the caller's transaction under the task row lock and is applied once: a
second identical call finds the step already moved and raises ``IllegalTransition`` before
anything is written. Afterwards the task continues: a task ``blocked_by_failures``, or in
``error`` after ``give_up`` or staleness, with no step left in ``error`` is resumed (event
``resume`` → ``evaluating_results``, ADR 0005) and finalized; any other unfinished task is
simply re-evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tasker.domain.model import JSON, JSONObject, StepRecord
from tasker.domain.states import (
    STEP_TRANSITIONS,
    StepEvent,
    StepState,
    TaskEvent,
    TaskState,
)
from tasker.domain.template import StepType
from tasker.errors import IllegalTransition, StepNotFound, TaskNotFound
from tasker.orchestration.dlq import task_snapshot
from tasker.orchestration.expansion import apply_outcome
from tasker.orchestration.lifecycle import evaluate_locked_task, move_task
from tasker.orchestration.templates import TemplateCache
from tasker.store.base import Transaction
from tasker.store.sql import LockedTask

__all__ = [
    "StepActionResult",
    "complete_step_manually",
    "give_up_task",
    "manual_completion_document",
    "reset_step_for_retry",
    "resolve_step_manually",
    "resolve_task_manually",
]

_RESUMABLE_ERROR_EVENTS = frozenset({TaskEvent.GIVE_UP.value, TaskEvent.STALENESS_TIMEOUT.value})
_RELEASE_CLAIM = {"in_process": False, "claim_token": None, "lease_expires_at": None}


@dataclass(frozen=True, slots=True)
class StepActionResult:
    """What an operator step action did: the step's new state and where the task went."""

    task_uuid: str
    step_uuid: str
    step_state: StepState
    task_state: TaskState
    resumed: bool


def reset_step_for_retry(
    tx: Transaction,
    task_uuid: str,
    step_uuid: str,
    now: datetime,
    *,
    reset_by: str,
    reason: str,
) -> StepActionResult:
    """Give a failed step a fresh budget: ``error`` → ``pending``, ``attempts = 0``.

    Results and checkpoint are kept (a checkpointed step resumes from its cursor); the backoff
    is cleared so that the step is ready at once.

    Raises:
        TaskNotFound, StepNotFound: no such task, or the step is not one of its steps.
        IllegalTransition: the step is not in ``error`` (e.g. it was reset already), or the
            task is finished for good; nothing was written.
    """
    return _step_action(
        tx,
        task_uuid,
        step_uuid,
        now,
        StepEvent.RESET_FOR_RETRY,
        changes={"attempts": 0, "next_retry_at": None, "backoff_request_seconds": None},
        audit={"reset_by": reset_by, "reason": reason},
    )


def resolve_step_manually(
    tx: Transaction,
    task_uuid: str,
    step_uuid: str,
    now: datetime,
    *,
    resolved_by: str,
    reason: str,
) -> StepActionResult:
    """Mark a step ``resolved_manually``: it satisfies its dependents without results.

    A failed attempt's stored document is cleared, so dependents find no result for the step
    (execution.md §10; the failure stays in the step's transitions and result audit). Allowed
    from any unfinished step state; a worker still running it loses its claim and its late
    result is refused.

    Raises:
        TaskNotFound, StepNotFound: no such task, or the step is not one of its steps.
        IllegalTransition: the step is already finished (complete, cancelled or resolved), or
            the task is finished for good; nothing was written.
    """
    return _step_action(
        tx,
        task_uuid,
        step_uuid,
        now,
        StepEvent.RESOLVE_MANUALLY,
        changes={"processed": True, "processed_at": now, "results": None, **_RELEASE_CLAIM},
        audit={"resolved_by": resolved_by, "reason": reason},
    )


def complete_step_manually(
    tx: Transaction,
    task_uuid: str,
    step_uuid: str,
    now: datetime,
    *,
    result: JSON,
    metadata: JSON = None,
    completed_by: str,
    reason: str,
    templates: TemplateCache | None = None,
) -> StepActionResult:
    """Complete a step with an operator-supplied result that dependents read like a handler's.

    The stored document is ``manual_completion_document(...)``. When ``templates`` is given
    and the step is a decision or batchable step, ``result`` is applied as its outcome (branches
    or batch workers are created) exactly as a handler's would be.

    Raises:
        TaskNotFound, StepNotFound: no such task, or the step is not one of its steps.
        IllegalTransition: the step is already finished, the task is finished for good, or the
            result is not a valid outcome for a decision/batchable step; nothing was written
            (the caller's transaction rolls back).
    """
    document = manual_completion_document(
        step_uuid, result, metadata, completed_by=completed_by, reason=reason
    )

    def apply_step_outcome(task: LockedTask, step: StepRecord) -> None:
        if templates is None:
            return
        template = templates.by_uuid(tx, task.named_task_uuid)
        step_template = template.step(step.template_step_name)
        if step_template.type not in (StepType.DECISION, StepType.BATCHABLE):
            return
        problem = apply_outcome(
            tx, task_uuid, template, step_template, step_uuid, document["result"], now
        )
        if problem is not None:
            raise IllegalTransition(
                f"cannot complete step {step.name!r} ({step_uuid}) of task {task_uuid}"
                f" manually: {problem}"
            )

    return _step_action(
        tx,
        task_uuid,
        step_uuid,
        now,
        StepEvent.COMPLETE_MANUALLY,
        changes={"processed": True, "processed_at": now, "results": document, **_RELEASE_CLAIM},
        audit={"completed_by": completed_by, "reason": reason},
        before=apply_step_outcome,
    )


def manual_completion_document(
    step_uuid: str, result: JSON, metadata: JSON, *, completed_by: str, reason: str
) -> JSONObject:
    """The success document stored for a manually completed step (execution.md §9.3, §10).

    A non-object ``metadata`` is kept as ``{"operator_metadata": value}``.
    """
    if metadata is None:
        custom: JSONObject = {}
    elif isinstance(metadata, dict):
        custom = dict(metadata)
    else:
        custom = {"operator_metadata": metadata}
    return {
        "step_uuid": step_uuid,
        "success": True,
        "status": "completed",
        "result": result,
        "error": None,
        "metadata": {
            "execution_time_ms": 0,
            "manually_completed": True,
            "completed_by": completed_by,
            "completion_reason": reason,
            "custom": custom,
        },
    }


# -- the shared path ---------------------------------------------------------------------------

_ACTION_WORDS = {
    StepEvent.RESET_FOR_RETRY: "reset step for retry",
    StepEvent.RESOLVE_MANUALLY: "manually resolve step",
    StepEvent.COMPLETE_MANUALLY: "manually complete step",
}
_NATURAL_TARGET = {
    StepEvent.RESET_FOR_RETRY: StepState.PENDING,
    StepEvent.RESOLVE_MANUALLY: StepState.RESOLVED_MANUALLY,
    StepEvent.COMPLETE_MANUALLY: StepState.COMPLETE,
}


def _step_action(
    tx: Transaction,
    task_uuid: str,
    step_uuid: str,
    now: datetime,
    event: StepEvent,
    *,
    changes: dict[str, Any],
    audit: JSONObject,
    before: Callable[[LockedTask, StepRecord], None] | None = None,
) -> StepActionResult:
    task = tx.lock_task(task_uuid)
    if task is None:
        raise TaskNotFound(f"task {task_uuid} does not exist")
    step = tx.get_step(step_uuid)
    if step is None or step.task_uuid != task_uuid:
        raise StepNotFound(f"step {step_uuid} does not exist in task {task_uuid}")
    words = _ACTION_WORDS[event]
    resumable = _is_resumable(tx, task)
    if task.state.is_terminal and not resumable:
        raise IllegalTransition(
            f"Cannot {words}: task {task_uuid} is {task.state.value}; step actions apply to"
            " unfinished tasks and to tasks that failed by give_up or staleness"
        )
    target = STEP_TRANSITIONS.get((step.state, event))
    if target is None:
        raise IllegalTransition(_refusal(words, step, event))
    if before is not None:
        before(task, step)
    metadata: JSONObject = {"operator_action": event.value, **audit}
    moved = tx.transition_step(
        step_uuid,
        task_uuid,
        step.state,
        target,
        event.value,
        now,
        changes=changes,
        metadata=metadata,
    )
    if moved is None:
        # Workers claim without the task lock; the step moved between our read and write.
        raise IllegalTransition(
            f"Cannot {words}: step {step.name!r} ({step_uuid}) changed state while the action"
            " was applied; read it again and retry"
        )
    task_state, resumed = _continue_task(
        tx, task, resumable, now, metadata | {"step_uuid": step_uuid}
    )
    return StepActionResult(task_uuid, step_uuid, target, task_state, resumed)


def _refusal(words: str, step: StepRecord, event: StepEvent) -> str:
    natural = _NATURAL_TARGET[event]
    message = (
        f"Cannot {words}: invalid transition from {step.state.value} to {natural.value}"
        f" (step {step.name!r}, {step.workflow_step_uuid})"
    )
    if step.state is natural:
        return message + f"; the step is already {natural.value} (was the action applied before?)"
    if event is StepEvent.RESET_FOR_RETRY:
        return message + "; only a step in error can be reset"
    return message + "; the step is already finished"


def _is_resumable(tx: Transaction, task: LockedTask) -> bool:
    """Blocked, or in ``error`` by ``give_up``/staleness (never by cancel or enqueue failure)."""
    if task.state is TaskState.BLOCKED_BY_FAILURES:
        return True
    if task.state is TaskState.ERROR:
        return tx.task_last_event(task.task_uuid) in _RESUMABLE_ERROR_EVENTS
    return False


def _continue_task(
    tx: Transaction, task: LockedTask, resumable: bool, now: datetime, metadata: JSONObject
) -> tuple[TaskState, bool]:
    """Resume a repaired task, or re-evaluate an unfinished one (execution.md §4)."""
    failed = tx.step_state_counts(task.task_uuid).get(StepState.ERROR, 0)
    if resumable and not failed:
        state = move_task(tx, task, task.state, TaskEvent.RESUME, now, metadata)
        return evaluate_locked_task(tx, replace(task, state=state), now), True
    if task.state.is_terminal:
        return task.state, False  # still failed steps: the task stays in error until they are fixed
    return evaluate_locked_task(tx, task, now), False


# -- task-level actions ------------------------------------------------------------------------


def give_up_task(
    tx: Transaction, task_uuid: str, now: datetime, *, given_up_by: str, reason: str
) -> TaskState:
    """Close a blocked task as failed (``give_up`` → ``error``) and open its DLQ entry.

    Steps still in flight finish and store their results; the task does not move again unless
    an operator resumes it through a step action.

    Raises:
        TaskNotFound: no such task.
        IllegalTransition: the task is not ``blocked_by_failures``; nothing was written.
    """
    task = _blocked_task(tx, task_uuid, "give up")
    audit: dict[str, object] = {
        "operator_action": "give_up",
        "given_up_by": given_up_by,
        "reason": reason,
    }
    state = move_task(tx, task, task.state, TaskEvent.GIVE_UP, now, audit)
    record = tx.get_task(task_uuid)
    assert record is not None  # locked by this transaction
    counts = {s.value: n for s, n in tx.step_state_counts(task_uuid).items()}
    tx.insert_dlq_entry(
        task_uuid,
        TaskState.BLOCKED_BY_FAILURES.value,
        "max_retries_exceeded",
        task_snapshot(record, TaskState.BLOCKED_BY_FAILURES, now, step_states=counts),
        {"detection_method": "operator_give_up", "given_up_by": given_up_by, "reason": reason},
        now,
    )
    return state


def resolve_task_manually(
    tx: Transaction, task_uuid: str, now: datetime, *, resolved_by: str, reason: str
) -> TaskState:
    """Close a blocked task as handled outside the engine (``manual_resolution``).

    Raises:
        TaskNotFound: no such task.
        IllegalTransition: the task is not ``blocked_by_failures``; nothing was written.
    """
    task = _blocked_task(tx, task_uuid, "resolve task manually")
    audit: dict[str, object] = {
        "operator_action": "manual_resolution",
        "resolved_by": resolved_by,
        "reason": reason,
    }
    return move_task(tx, task, task.state, TaskEvent.MANUAL_RESOLUTION, now, audit)


def _blocked_task(tx: Transaction, task_uuid: str, words: str) -> LockedTask:
    task = tx.lock_task(task_uuid)
    if task is None:
        raise TaskNotFound(f"task {task_uuid} does not exist")
    if task.state is not TaskState.BLOCKED_BY_FAILURES:
        raise IllegalTransition(
            f"Cannot {words}: task {task_uuid} is {task.state.value}, not blocked_by_failures"
        )
    return task
