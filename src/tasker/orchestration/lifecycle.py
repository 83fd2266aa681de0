"""Drive one task's state machine: evaluate, enqueue, finalize, give up (execution.md §4).

Callers hold the task row locked (``tx.lock_task``) for the whole pass, so two processes that
finish parents of the same child at the same moment are serialised here and the child is
enqueued exactly once: the second pass sees it already ``enqueued`` and its compare-and-set fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tasker.domain.model import ExecutionStatus
from tasker.domain.readiness import status_from_counts
from tasker.domain.states import (
    PIPELINE_STEP_STATES,
    SATISFIED_STEP_STATES,
    StepEvent,
    StepState,
    TaskEvent,
    TaskState,
    next_task_state,
)
from tasker.store.base import Transaction
from tasker.store.sql import LockedTask

__all__ = ["evaluate_locked_task", "evaluate_task", "execution_status", "move_task"]


def move_task(
    tx: Transaction,
    task: LockedTask,
    current: TaskState,
    event: TaskEvent,
    now: datetime,
    metadata: Mapping[str, object] | None = None,
) -> TaskState:
    """Apply ``event`` to the task (table-checked, compare-and-set) and return the new state.

    Raises:
        IllegalTransition: the state machine forbids it; nothing was written.
    """
    target = next_task_state(current, event)
    if not tx.transition_task(
        task.task_uuid, current, target, event.value, now, dict(metadata or {})
    ):
        # The row is locked by this transaction, so a lost race here is a bug, not contention.
        raise RuntimeError(f"task {task.task_uuid} changed state under its own lock")
    return target


def execution_status(
    tx: Transaction, task_uuid: str, now: datetime, ready: int | None = None
) -> ExecutionStatus:
    """The task's step counts and the §5.1 status, computed from the store."""
    if ready is None:
        ready_steps, counts = tx.step_overview(task_uuid, now)
        ready = len(ready_steps)
    else:
        counts = tx.step_state_counts(task_uuid)
    return _status(counts, ready)


def _status(counts: Mapping[StepState, int], ready: int) -> ExecutionStatus:
    return status_from_counts(
        total=sum(counts.values()),
        ready=ready,
        error=counts.get(StepState.ERROR, 0),
        pipeline=sum(n for s, n in counts.items() if s in PIPELINE_STEP_STATES),
        in_progress=counts.get(StepState.IN_PROGRESS, 0),
        satisfied=sum(n for s, n in counts.items() if s in SATISFIED_STEP_STATES),
        pending=counts.get(StepState.PENDING, 0) + counts.get(StepState.WAITING_FOR_RETRY, 0),
    )


def evaluate_task(tx: Transaction, task_uuid: str, now: datetime) -> TaskState | None:
    """Lock a task and advance it as far as it can go now; ``None`` if it does not exist."""
    task = tx.lock_task(task_uuid)
    if task is None:
        return None
    return evaluate_locked_task(tx, task, now)


def evaluate_locked_task(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    """Advance a task the caller has locked, by its current state (execution.md §4)."""
    state = task.state
    while True:
        match state:
            case TaskState.PENDING:
                state = move_task(tx, task, state, TaskEvent.START, now)
            case TaskState.INITIALIZING:
                return _initialize(tx, task, now)
            case TaskState.STEPS_IN_PROCESS:
                state = move_task(tx, task, state, TaskEvent.STEP_COMPLETED, now)
            case TaskState.EVALUATING_RESULTS:
                return _finalize(tx, task, now)
            case TaskState.WAITING_FOR_DEPENDENCIES:
                status = execution_status(tx, task.task_uuid, now)
                if status.execution_status in ("processing", "waiting_for_dependencies"):
                    return state
                state = move_task(tx, task, state, TaskEvent.DEPENDENCIES_READY, now)
            case TaskState.WAITING_FOR_RETRY:
                return _retry_if_due(tx, task, now)
            case TaskState.BLOCKED_BY_FAILURES:
                return _give_up_if_idle(tx, task, now)
            case _:
                # enqueuing_steps is never seen outside a pass; terminal states do not move.
                return state


def _retry_if_due(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    state = TaskState.WAITING_FOR_RETRY
    if not tx.ready_steps(task.task_uuid, now):
        return state
    state = move_task(tx, task, state, TaskEvent.RETRY_READY, now)
    return _enqueue(tx, task, state, now)


def _initialize(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    state = TaskState.INITIALIZING
    ready = tx.ready_steps(task.task_uuid, now)
    if ready:
        state = move_task(tx, task, state, TaskEvent.READY_STEPS_FOUND, now)
        return _enqueue(tx, task, state, now, ready)
    if not tx.step_state_counts(task.task_uuid):
        return move_task(tx, task, state, TaskEvent.NO_STEPS_FOUND, now)
    return move_task(tx, task, state, TaskEvent.NO_DEPENDENCIES_READY, now)


def _finalize(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    state = TaskState.EVALUATING_RESULTS
    ready, counts = tx.step_overview(task.task_uuid, now)
    status = _status(counts, len(ready))
    match status.execution_status:
        case "all_complete":
            return move_task(tx, task, state, TaskEvent.ALL_STEPS_SUCCESSFUL, now)
        case "blocked_by_failures":
            move_task(tx, task, state, TaskEvent.PERMANENT_FAILURE, now)
            return _give_up_if_idle(tx, task, now)
        case "has_ready_steps":
            state = move_task(tx, task, state, TaskEvent.READY_STEPS_FOUND, now)
            return _enqueue(tx, task, state, now, ready)
        case "waiting_for_dependencies":
            return move_task(tx, task, state, TaskEvent.NO_DEPENDENCIES_READY, now)
        case _:
            return state  # processing: rest until the next result arrives


def _enqueue(
    tx: Transaction,
    task: LockedTask,
    state: TaskState,
    now: datetime,
    ready: list[tuple[str, StepState]] | None = None,
) -> TaskState:
    """Mark every ready step ``enqueued`` (the queue is the step state itself)."""
    enqueued = []
    if ready is None:
        ready = tx.ready_steps(task.task_uuid, now)
    for step_uuid, step_state in ready:
        current = step_state
        if current is StepState.WAITING_FOR_RETRY:
            tx.transition_step(
                step_uuid, task.task_uuid, current, StepState.PENDING, StepEvent.RETRY.value, now
            )
            current = StepState.PENDING
        moved = tx.transition_step(
            step_uuid,
            task.task_uuid,
            current,
            StepState.ENQUEUED,
            StepEvent.ENQUEUE.value,
            now,
            changes={"enqueued_at": now},
        )
        if moved is not None:
            enqueued.append(step_uuid)
    if enqueued:
        tx.wake_namespaces.add(task.namespace)
        tx.enqueued_step_uuids.update(enqueued)
    return move_task(tx, task, state, TaskEvent.STEPS_ENQUEUED, now, {"step_uuids": enqueued})


def _give_up_if_idle(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    """Canonical R5.4: a blocked task with nothing in flight gives up and opens a DLQ entry."""
    counts = tx.step_state_counts(task.task_uuid)
    if any(counts.get(s, 0) for s in PIPELINE_STEP_STATES):
        return TaskState.BLOCKED_BY_FAILURES
    state = move_task(tx, task, TaskState.BLOCKED_BY_FAILURES, TaskEvent.GIVE_UP, now)
    record = tx.get_task(task.task_uuid)
    snapshot: dict[str, object] = {
        "task_uuid": task.task_uuid,
        "namespace": task.namespace,
        "task_name": record.name if record else None,
        "current_state": TaskState.BLOCKED_BY_FAILURES.value,
        "snapshot_timestamp": now.isoformat(),
        "step_states": {s.value: n for s, n in counts.items()},
        "task_details": {
            "correlation_id": record.correlation_id if record else None,
            "priority": record.priority if record else None,
            "requested_at": record.requested_at.isoformat() if record else None,
            "created_at": record.created_at.isoformat() if record else None,
        },
    }
    tx.insert_dlq_entry(
        task.task_uuid,
        TaskState.BLOCKED_BY_FAILURES.value,
        "max_retries_exceeded",
        snapshot,
        {"detection_method": "automatic_give_up"},
        now,
    )
    return state
