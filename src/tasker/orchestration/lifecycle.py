"""Drive one task's state machine: evaluate, enqueue, finalize, give up (execution.md §4).

Callers hold the task row locked (``tx.lock_task``) for the whole pass, so two processes that
finish parents of the same child at the same moment are serialised here and the child is
enqueued exactly once: the second pass sees it already ``enqueued`` and its compare-and-set fails.

A pass checks each task transition against the state table as it decides it, and writes them
all at the end in one ``UPDATE`` (``transition_task_path``): the usual pass after a step result,
``steps_in_process -> evaluating_results -> enqueuing_steps -> steps_in_process``, is one
statement with three transition rows. Nothing a pass reads depends on the task row's state.

Passes over several locked tasks (``evaluate_locked_tasks``, a worker's group of results) run
the same decisions, task by task, over reads and writes made for all of them at once: one read
of every task's steps before the decisions, then one ``UPDATE`` enqueueing every task's ready
steps (each a compare-and-set, so a step is still enqueued exactly once), then one writing every
task's transitions. A pass only ever enqueues as its last decision, and the steps it read
change under its task lock only by claims (``enqueued -> in_progress``), which no decision
tells apart, so deciding from the earlier read decides what reading as it goes would have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

__all__ = [
    "evaluate_locked_task",
    "evaluate_locked_tasks",
    "evaluate_task",
    "execution_status",
    "move_task",
]


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


_Overview = tuple[list[tuple[str, StepState]], dict[StepState, int]]

# States whose pass starts by reading the task's steps (``step_overview``), read for all the
# tasks of ``evaluate_locked_tasks`` at once.
_READS_STEPS = frozenset(
    {
        TaskState.PENDING,
        TaskState.INITIALIZING,
        TaskState.STEPS_IN_PROCESS,
        TaskState.EVALUATING_RESULTS,
        TaskState.WAITING_FOR_DEPENDENCIES,
        TaskState.WAITING_FOR_RETRY,
    }
)


class _Pass:
    """The task transitions of one orchestration pass, checked now and written at the end;
    the steps it read, and the ready steps it decided to enqueue (also written at the end)."""

    __slots__ = ("moves", "ready", "start", "state", "steps", "task", "tx")

    def __init__(self, tx: Transaction, task: LockedTask, state: TaskState | None = None) -> None:
        self.tx = tx
        self.task = task
        self.start = task.state if state is None else state
        self.state = self.start
        self.moves: list[tuple[TaskState, str, JSONObject | None]] = []
        self.steps: _Overview | None = None
        self.ready: list[tuple[str, StepState]] = []

    def overview(self, now: datetime) -> _Overview:
        """The task's ready steps and step counts (read once per pass: nothing the pass
        decides changes them before its last read)."""
        if self.steps is None:
            self.steps = self.tx.step_overview(self.task.task_uuid, now)
        return self.steps

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
        _write(self.tx, [self], now)
        return self.state


def _write(tx: Transaction, runs: Sequence[_Pass], now: datetime) -> None:
    """Write the recorded transitions of every pass, in one statement."""
    moving = [run for run in runs if run.moves]
    if moving and not tx.transition_task_paths(
        [(run.task.task_uuid, run.start, run.moves) for run in moving], now
    ):
        # The rows are locked by this transaction: a lost race here is a bug, not contention.
        stuck = ", ".join(run.task.task_uuid for run in moving)
        raise RuntimeError(f"a task of {stuck} changed state under its own lock")
    for run in moving:
        run.start, run.moves = run.state, []


def evaluate_locked_task(tx: Transaction, task: LockedTask, now: datetime) -> TaskState:
    """Advance a task the caller has locked, by its current state (execution.md §4)."""
    return evaluate_locked_tasks(tx, [task], now)[0]


def evaluate_locked_tasks(
    tx: Transaction,
    tasks: Sequence[LockedTask],
    now: datetime,
    read: Mapping[str, _Overview] | None = None,
) -> list[TaskState]:
    """``evaluate_locked_task`` for several tasks the caller has locked, with the reads and
    writes of all their passes made together (see the module docstring).

    ``read`` holds tasks' overviews (``step_overview`` at ``now``) that the caller already
    has, read since the tasks were last written (the store reads them together with storing
    results); the others are read here.

    Returns:
        Each task's state after its pass, in the order of ``tasks``.
    """
    runs = [_Pass(tx, task) for task in tasks]
    known = read or {}
    reading = [
        run.task.task_uuid
        for run in runs
        if run.state in _READS_STEPS and run.task.task_uuid not in known
    ]
    overviews = tx.step_overviews(reading, now) if reading else {}
    for run in runs:
        if run.state in _READS_STEPS:
            run.steps = overviews.get(run.task.task_uuid) or known.get(run.task.task_uuid)
        _advance(tx, run, now)
    _enqueue_ready(tx, runs, now)
    _write(tx, runs, now)
    return [run.state for run in runs]


def _advance(tx: Transaction, run: _Pass, now: datetime) -> None:
    while True:
        match run.state:
            case TaskState.PENDING:
                run.move(TaskEvent.START)
            case TaskState.INITIALIZING:
                return _initialize(run, now)
            case TaskState.STEPS_IN_PROCESS:
                run.move(TaskEvent.STEP_COMPLETED)
            case TaskState.EVALUATING_RESULTS:
                return _finalize(tx, run, now)
            case TaskState.WAITING_FOR_DEPENDENCIES:
                ready, counts = run.overview(now)
                status = _status(counts, len(ready))
                if status.execution_status in ("processing", "waiting_for_dependencies"):
                    return None
                run.move(TaskEvent.DEPENDENCIES_READY)
            case TaskState.WAITING_FOR_RETRY:
                return _retry_if_due(run, now)
            case TaskState.BLOCKED_BY_FAILURES:
                return _give_up_if_idle(tx, run, now)
            case _:
                # enqueuing_steps is never seen outside a pass; terminal states do not move.
                return None


def _retry_if_due(run: _Pass, now: datetime) -> None:
    ready = run.overview(now)[0]
    if not ready:
        return
    run.move(TaskEvent.RETRY_READY)
    _enqueue(run, ready)


def _initialize(run: _Pass, now: datetime) -> None:
    ready, counts = run.overview(now)
    if ready:
        run.move(TaskEvent.READY_STEPS_FOUND)
        _enqueue(run, ready)
    elif not counts:
        run.move(TaskEvent.NO_STEPS_FOUND)
    else:
        run.move(TaskEvent.NO_DEPENDENCIES_READY)


def _finalize(tx: Transaction, run: _Pass, now: datetime) -> None:
    ready, counts = run.overview(now)
    status = _status(counts, len(ready))
    match status.execution_status:
        case "all_complete":
            run.move(TaskEvent.ALL_STEPS_SUCCESSFUL)
        case "blocked_by_failures":
            run.move(TaskEvent.PERMANENT_FAILURE)
            _give_up_if_idle(tx, run, now)
        case "has_ready_steps":
            run.move(TaskEvent.READY_STEPS_FOUND)
            _enqueue(run, ready)
        case "waiting_for_dependencies":
            run.move(TaskEvent.NO_DEPENDENCIES_READY)
        case _:
            pass  # processing: rest until the next result arrives


def _enqueue(run: _Pass, ready: list[tuple[str, StepState]]) -> None:
    """Decide to enqueue every ready step: the pass's last decision, written (and the pass
    moved on by ``steps_enqueued``) by ``_enqueue_ready`` together with other passes'."""
    run.ready = ready


def _enqueue_ready(tx: Transaction, runs: Sequence[_Pass], now: datetime) -> None:
    """Mark the ready steps of every pass ``enqueued`` (the queue is the step state itself),
    in one compare-and-set ``UPDATE``, and record each pass's ``steps_enqueued``."""
    enqueuing = [run for run in runs if run.ready]
    if not enqueuing:
        return
    moved = tx.enqueue_steps(
        [step for run in enqueuing for step in run.ready],
        StepState.ENQUEUED,
        StepEvent.ENQUEUE.value,
        now,
        through={StepState.WAITING_FOR_RETRY: (StepState.PENDING, StepEvent.RETRY.value)},
    )
    for run in enqueuing:
        enqueued = [step_uuid for step_uuid, _ in run.ready if step_uuid in moved]
        if enqueued:
            tx.wake_namespaces.add(run.task.namespace)
            tx.enqueued_step_uuids.update(enqueued)
        run.move(TaskEvent.STEPS_ENQUEUED, {"step_uuids": enqueued})
        run.ready = []


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
