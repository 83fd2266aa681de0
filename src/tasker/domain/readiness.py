"""Which steps may run now, and what a task should do next (execution.md §5).

The stores compute the same rules in SQL for speed; these pure versions are the reference that
the property tests hold the SQL to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tasker.domain.model import ExecutionStatus
from tasker.domain.states import PIPELINE_STEP_STATES, SATISFIED_STEP_STATES, StepState

__all__ = ["StepView", "execution_status", "is_ready", "is_retry_eligible"]


@dataclass(frozen=True, slots=True)
class StepView:
    """The part of a step row that readiness depends on."""

    name: str
    state: StepState
    attempts: int = 0
    max_attempts: int = 3
    retryable: bool = True
    next_retry_at: datetime | None = None


def is_retry_eligible(step: StepView) -> bool:
    """The first run is always eligible; later runs need a retryable step with attempts left."""
    return step.attempts == 0 or (step.retryable and step.attempts < step.max_attempts)


def is_ready(step: StepView, parents: Iterable[StepView], now: datetime) -> bool:
    """A step is ready when it waits, may run again, its backoff passed and its parents are done."""
    return (
        step.state in (StepState.PENDING, StepState.WAITING_FOR_RETRY)
        and all(parent.state in SATISFIED_STEP_STATES for parent in parents)
        and is_retry_eligible(step)
        and (step.next_retry_at is None or step.next_retry_at <= now)
    )


def execution_status(
    steps: Mapping[str, StepView], parents: Mapping[str, Iterable[str]], now: datetime
) -> ExecutionStatus:
    """Summarise a task's steps with the first-match rules of execution.md §5.1."""
    states = [step.state for step in steps.values()]
    ready = sum(
        1
        for name, step in steps.items()
        if is_ready(step, (steps[p] for p in parents.get(name, ())), now)
    )
    return status_from_counts(
        total=len(states),
        ready=ready,
        error=states.count(StepState.ERROR),
        pipeline=sum(1 for s in states if s in PIPELINE_STEP_STATES),
        in_progress=states.count(StepState.IN_PROGRESS),
        satisfied=sum(1 for s in states if s in SATISFIED_STEP_STATES),
        pending=sum(1 for s in states if s in (StepState.PENDING, StepState.WAITING_FOR_RETRY)),
    )


def status_from_counts(
    *,
    total: int,
    ready: int,
    error: int,
    pipeline: int,
    in_progress: int,
    satisfied: int,
    pending: int,
) -> ExecutionStatus:
    """Apply the §5.1 rules to counts a store computed."""
    if error:
        status, action = "blocked_by_failures", "handle_failures"
    elif ready:
        status, action = "has_ready_steps", "execute_ready_steps"
    elif pipeline:
        status, action = "processing", "wait_for_completion"
    elif total and satisfied == total:
        status, action = "all_complete", "finalize_task"
    else:
        status, action = "waiting_for_dependencies", "wait_for_dependencies"
    return ExecutionStatus(
        execution_status=status,
        recommended_action=action,
        total_steps=total,
        pending_steps=pending,
        in_progress_steps=in_progress,
        completed_steps=satisfied,
        failed_steps=error,
        ready_steps=ready,
        enqueued_steps=pipeline - in_progress,
    )
