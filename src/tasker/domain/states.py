"""Task and workflow-step state machines as pure transition tables (states.md).

The current state of an entity is the ``to_state`` of its most recent transition row. Every
change goes through ``next_task_state`` / ``next_step_state``: an event that the table does not
allow from the current state raises ``IllegalTransition`` before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from tasker.errors import IllegalTransition

__all__ = [
    "PIPELINE_STEP_STATES",
    "SATISFIED_STEP_STATES",
    "SETTLED_TASK_STATES",
    "STEP_TRANSITIONS",
    "TASK_TRANSITIONS",
    "TERMINAL_STEP_STATES",
    "TERMINAL_TASK_STATES",
    "StepEvent",
    "StepState",
    "TaskEvent",
    "TaskState",
    "next_step_state",
    "next_task_state",
]


class TaskState(StrEnum):
    PENDING = "pending"
    INITIALIZING = "initializing"
    ENQUEUING_STEPS = "enqueuing_steps"
    STEPS_IN_PROCESS = "steps_in_process"
    EVALUATING_RESULTS = "evaluating_results"
    WAITING_FOR_DEPENDENCIES = "waiting_for_dependencies"
    WAITING_FOR_RETRY = "waiting_for_retry"
    BLOCKED_BY_FAILURES = "blocked_by_failures"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESOLVED_MANUALLY = "resolved_manually"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_TASK_STATES


class TaskEvent(StrEnum):
    START = "start"
    READY_STEPS_FOUND = "ready_steps_found"
    NO_STEPS_FOUND = "no_steps_found"
    NO_DEPENDENCIES_READY = "no_dependencies_ready"
    DEPENDENCIES_READY = "dependencies_ready"
    STEPS_ENQUEUED = "steps_enqueued"
    ENQUEUE_FAILED = "enqueue_failed"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    ALL_STEPS_COMPLETED = "all_steps_completed"
    ALL_STEPS_SUCCESSFUL = "all_steps_successful"
    PERMANENT_FAILURE = "permanent_failure"
    RETRY_READY = "retry_ready"
    GIVE_UP = "give_up"
    RESUME = "resume"
    MANUAL_RESOLUTION = "manual_resolution"
    CANCEL = "cancel"
    # Privileged write of the staleness detector (states.md §1.2 "Privileged writes"); we name
    # it as an event so that it is checked against a table like every other change.
    STALENESS_TIMEOUT = "staleness_timeout"


class StepState(StrEnum):
    PENDING = "pending"
    ENQUEUED = "enqueued"
    IN_PROGRESS = "in_progress"
    ENQUEUED_FOR_ORCHESTRATION = "enqueued_for_orchestration"
    ENQUEUED_AS_ERROR_FOR_ORCHESTRATION = "enqueued_as_error_for_orchestration"
    WAITING_FOR_RETRY = "waiting_for_retry"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESOLVED_MANUALLY = "resolved_manually"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STEP_STATES


class StepEvent(StrEnum):
    ENQUEUE = "enqueue"
    START = "start"
    ENQUEUE_FOR_ORCHESTRATION = "enqueue_for_orchestration"
    ENQUEUE_AS_ERROR_FOR_ORCHESTRATION = "enqueue_as_error_for_orchestration"
    COMPLETE = "complete"
    FAIL = "fail"
    WAIT_FOR_RETRY = "wait_for_retry"
    RETRY = "retry"
    RESET_FOR_RETRY = "reset_for_retry"
    CANCEL = "cancel"
    RESOLVE_MANUALLY = "resolve_manually"
    COMPLETE_MANUALLY = "complete_manually"


TERMINAL_TASK_STATES = frozenset(
    {TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED, TaskState.RESOLVED_MANUALLY}
)
# ``error`` is automation-terminal for steps: only an operator moves a step out of it.
# A task at rest until someone acts: terminal, or blocked by failures (what a waiter waits for).
SETTLED_TASK_STATES = TERMINAL_TASK_STATES | {TaskState.BLOCKED_BY_FAILURES}
TERMINAL_STEP_STATES = frozenset(
    {StepState.COMPLETE, StepState.CANCELLED, StepState.RESOLVED_MANUALLY}
)
SATISFIED_STEP_STATES = frozenset({StepState.COMPLETE, StepState.RESOLVED_MANUALLY})
PIPELINE_STEP_STATES = frozenset(
    {
        StepState.ENQUEUED,
        StepState.IN_PROGRESS,
        StepState.ENQUEUED_FOR_ORCHESTRATION,
        StepState.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION,
    }
)

_T = TaskState
_TE = TaskEvent

TASK_TRANSITIONS: Mapping[tuple[TaskState, TaskEvent], TaskState] = {
    (_T.PENDING, _TE.START): _T.INITIALIZING,
    (_T.INITIALIZING, _TE.READY_STEPS_FOUND): _T.ENQUEUING_STEPS,
    (_T.INITIALIZING, _TE.NO_STEPS_FOUND): _T.COMPLETE,
    (_T.INITIALIZING, _TE.NO_DEPENDENCIES_READY): _T.WAITING_FOR_DEPENDENCIES,
    (_T.ENQUEUING_STEPS, _TE.STEPS_ENQUEUED): _T.STEPS_IN_PROCESS,
    (_T.ENQUEUING_STEPS, _TE.ENQUEUE_FAILED): _T.ERROR,
    (_T.STEPS_IN_PROCESS, _TE.STEP_COMPLETED): _T.EVALUATING_RESULTS,
    (_T.STEPS_IN_PROCESS, _TE.ALL_STEPS_COMPLETED): _T.EVALUATING_RESULTS,
    (_T.STEPS_IN_PROCESS, _TE.STEP_FAILED): _T.WAITING_FOR_RETRY,
    (_T.EVALUATING_RESULTS, _TE.ALL_STEPS_SUCCESSFUL): _T.COMPLETE,
    (_T.EVALUATING_RESULTS, _TE.READY_STEPS_FOUND): _T.ENQUEUING_STEPS,
    (_T.EVALUATING_RESULTS, _TE.NO_DEPENDENCIES_READY): _T.WAITING_FOR_DEPENDENCIES,
    (_T.EVALUATING_RESULTS, _TE.PERMANENT_FAILURE): _T.BLOCKED_BY_FAILURES,
    (_T.WAITING_FOR_DEPENDENCIES, _TE.DEPENDENCIES_READY): _T.EVALUATING_RESULTS,
    (_T.WAITING_FOR_RETRY, _TE.RETRY_READY): _T.ENQUEUING_STEPS,
    (_T.BLOCKED_BY_FAILURES, _TE.GIVE_UP): _T.ERROR,
    (_T.BLOCKED_BY_FAILURES, _TE.MANUAL_RESOLUTION): _T.RESOLVED_MANUALLY,
    # Canonical extension (docs/decisions): operator resume. Guards live in orchestration.
    (_T.BLOCKED_BY_FAILURES, _TE.RESUME): _T.EVALUATING_RESULTS,
    (_T.ERROR, _TE.RESUME): _T.EVALUATING_RESULTS,
    (_T.WAITING_FOR_DEPENDENCIES, _TE.STALENESS_TIMEOUT): _T.ERROR,
    (_T.WAITING_FOR_RETRY, _TE.STALENESS_TIMEOUT): _T.ERROR,
    (_T.STEPS_IN_PROCESS, _TE.STALENESS_TIMEOUT): _T.ERROR,
    **{(state, _TE.CANCEL): _T.CANCELLED for state in _T if state not in TERMINAL_TASK_STATES},
}

_S = StepState
_SE = StepEvent
_OPERATOR_SOURCES = (
    _S.PENDING,
    _S.ENQUEUED,
    _S.IN_PROGRESS,
    _S.ENQUEUED_FOR_ORCHESTRATION,
    _S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION,
    _S.WAITING_FOR_RETRY,
    _S.ERROR,
)

STEP_TRANSITIONS: Mapping[tuple[StepState, StepEvent], StepState] = {
    (_S.PENDING, _SE.ENQUEUE): _S.ENQUEUED,
    (_S.ENQUEUED, _SE.START): _S.IN_PROGRESS,
    (_S.PENDING, _SE.START): _S.IN_PROGRESS,
    (_S.IN_PROGRESS, _SE.ENQUEUE_FOR_ORCHESTRATION): _S.ENQUEUED_FOR_ORCHESTRATION,
    (_S.IN_PROGRESS, _SE.ENQUEUE_AS_ERROR_FOR_ORCHESTRATION): (
        _S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION
    ),
    (_S.ENQUEUED_FOR_ORCHESTRATION, _SE.COMPLETE): _S.COMPLETE,
    (_S.ENQUEUED_FOR_ORCHESTRATION, _SE.FAIL): _S.ERROR,
    (_S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION, _SE.WAIT_FOR_RETRY): _S.WAITING_FOR_RETRY,
    (_S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION, _SE.FAIL): _S.ERROR,
    (_S.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION, _SE.COMPLETE): _S.COMPLETE,
    (_S.WAITING_FOR_RETRY, _SE.RETRY): _S.PENDING,
    (_S.ERROR, _SE.RETRY): _S.PENDING,
    (_S.ERROR, _SE.RESET_FOR_RETRY): _S.PENDING,
    (_S.PENDING, _SE.FAIL): _S.ERROR,
    (_S.ENQUEUED, _SE.FAIL): _S.ERROR,
    (_S.IN_PROGRESS, _SE.FAIL): _S.ERROR,
    (_S.PENDING, _SE.WAIT_FOR_RETRY): _S.WAITING_FOR_RETRY,
    (_S.ENQUEUED, _SE.WAIT_FOR_RETRY): _S.WAITING_FOR_RETRY,
    (_S.IN_PROGRESS, _SE.WAIT_FOR_RETRY): _S.WAITING_FOR_RETRY,
    (_S.IN_PROGRESS, _SE.COMPLETE): _S.COMPLETE,
    **{(state, _SE.CANCEL): _S.CANCELLED for state in _OPERATOR_SOURCES},
    **{(state, _SE.RESOLVE_MANUALLY): _S.RESOLVED_MANUALLY for state in _OPERATOR_SOURCES},
    **{(state, _SE.COMPLETE_MANUALLY): _S.COMPLETE for state in _OPERATOR_SOURCES},
}


def next_task_state(current: TaskState, event: TaskEvent) -> TaskState:
    """The state a task moves to when ``event`` happens in ``current``.

    Raises:
        IllegalTransition: the table has no such edge.
    """
    try:
        return TASK_TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalTransition(
            f"task cannot take event {event.value!r} in state {current.value!r}"
        ) from None


def next_step_state(current: StepState, event: StepEvent) -> StepState:
    """The state a workflow step moves to when ``event`` happens in ``current``.

    Raises:
        IllegalTransition: the table has no such edge.
    """
    try:
        return STEP_TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalTransition(
            f"step cannot take event {event.value!r} in state {current.value!r}"
        ) from None
