"""Drive one task's state machine: evaluate, enqueue, finalize, give up (execution.md §4).

Callers hold the task row locked (``tx.lock_task``) for the whole pass, so two processes that
finish parents of the same child at the same moment are serialised here and the child is
enqueued exactly once: the second pass sees it already ``enqueued`` and its compare-and-set fails.

A pass checks each task transition against the state table as it decides it, and writes them
all at the end in one ``UPDATE`` (``transition_task_path``): the usual pass after a step result,
``steps_in_process -> evaluating_results -> enqueuing_steps -> steps_in_process``, is one
statement with three transition rows. Nothing a pass reads depends on the task row's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tasker.domain.model import ExecutionStatus, JSONObject
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
    run = _Pass(tx, task, current)
    run.move(event, metadata)
    return run.write(now)


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


class _Pass:
    """The task transitions of one orchestration pass, checked now and written at the end."""

    __slots__ = ("moves", "start", "state", "task", "tx")

    def __init__(self, tx: Transaction, task: LockedTask, state: TaskState | None = None) -> None:
        self.tx = tx
        self.task = task
        self.start = task.state if state is None else state
        self.state = self.start
        self.moves: list[tuple[TaskState, str, JSONObject | None]] = []

    def move(self, event: TaskEvent, metadata: Mapping[str, object] | None = None) -> TaskState:
        """Apply ``event`` (table-checked) and return the new state.

        Raises:
            IllegalTransition: the state machine forbids it; nothing was recorded.
        """
        target = next_task_state(self.state, event)
        self.moves.append((target, event.value, dict(metadata) if metadata else None))
        self.state = target
        return target

    def write(self, now: datetime) -> TaskState:
        if self.moves and not self.tx.transition_task_path(
            self.task.task_uuid, self.start, self.moves, now
        ):
            # The row is locked by this transaction: a lost race here is a bug, not contention.
            raise RuntimeError(f"task {self.task.task_uuid} changed state under its own lock")
        self.start, self.moves = self.state, []
        return self.state


def evaluate_locked_task(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    """Advance a task the caller has locked, by its current state (execution.md §4)."""
    run = _Pass(tx, task)
    _advance(tx, run, now)
    return run.write(now)


def _advance(tx: Transaction, run: _Pass, now: datetime) -> None:
    while True:
        match run.state:
            case TaskState.PENDING:
                run.move(TaskEvent.START)
            case TaskState.INITIALIZING:
                return _initialize(tx, run, now)
            case TaskState.STEPS_IN_PROCESS:
                run.move(TaskEvent.STEP_COMPLETED)
            case TaskState.EVALUATING_RESULTS:
                return _finalize(tx, run, now)
            case TaskState.WAITING_FOR_DEPENDENCIES:
                status = execution_status(tx, run.task.task_uuid, now)
                if status.execution_status in ("processing", "waiting_for_dependencies"):
                    return None
                run.move(TaskEvent.DEPENDENCIES_READY)
            case TaskState.WAITING_FOR_RETRY:
                return _retry_if_due(tx, run, now)
            case TaskState.BLOCKED_BY_FAILURES:
                return _give_up_if_idle(tx, run, now)
            case _:
                # enqueuing_steps is never seen outside a pass; terminal states do not move.
                return None


def _retry_if_due(tx: Transaction, run: _Pass, now: datetime) -> None:
    ready = tx.ready_steps(run.task.task_uuid, now)
    if not ready:
        return
    run.move(TaskEvent.RETRY_READY)
    _enqueue(tx, run, now, ready)


def _initialize(tx: Transaction, run: _Pass, now: datetime) -> None:
    ready, counts = tx.step_overview(run.task.task_uuid, now)
    if ready:
        run.move(TaskEvent.READY_STEPS_FOUND)
        _enqueue(tx, run, now, ready)
    elif not counts:
        run.move(TaskEvent.NO_STEPS_FOUND)
    else:
        run.move(TaskEvent.NO_DEPENDENCIES_READY)


def _finalize(tx: Transaction, run: _Pass, now: datetime) -> None:
    ready, counts = tx.step_overview(run.task.task_uuid, now)
    status = _status(counts, len(ready))
    match status.execution_status:
        case "all_complete":
            run.move(TaskEvent.ALL_STEPS_SUCCESSFUL)
        case "blocked_by_failures":
            run.move(TaskEvent.PERMANENT_FAILURE)
            _give_up_if_idle(tx, run, now)
        case "has_ready_steps":
            run.move(TaskEvent.READY_STEPS_FOUND)
            _enqueue(tx, run, now, ready)
        case "waiting_for_dependencies":
            run.move(TaskEvent.NO_DEPENDENCIES_READY)
        case _:
            pass  # processing: rest until the next result arrives


def _enqueue(
    tx: Transaction, run: _Pass, now: datetime, ready: list[tuple[str, StepState]]
) -> None:
    """Mark every ready step ``enqueued`` (the queue is the step state itself)."""
    task = run.task
    enqueued = []
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
    run.move(TaskEvent.STEPS_ENQUEUED, {"step_uuids": enqueued})


def _give_up_if_idle(tx: Transaction, run: _Pass, now: datetime) -> None:
    """Canonical R5.4: a blocked task with nothing in flight gives up and opens a DLQ entry."""
    task = run.task
    counts = tx.step_state_counts(task.task_uuid)
    if any(counts.get(s, 0) for s in PIPELINE_STEP_STATES):
        return
    run.move(TaskEvent.GIVE_UP)
    run.write(now)  # the DLQ entry follows the task's move to error, as before
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
