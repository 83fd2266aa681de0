"""Requests from outside the normal flow: cancellation and operator step actions."""

from __future__ import annotations

from datetime import datetime

from tasker.domain.states import TERMINAL_STEP_STATES, StepEvent, StepState, TaskEvent
from tasker.errors import IllegalTransition, TaskNotFound
from tasker.orchestration.lifecycle import move_task
from tasker.store.base import Transaction

__all__ = ["cancel_task"]


def cancel_task(tx: Transaction, task_uuid: str, now: datetime) -> None:
    """Cancel every unfinished step, then the task, in one transaction (execution.md §11).

    Raises:
        TaskNotFound: no such task.
        IllegalTransition: the task already finished; nothing was written.
    """
    task = tx.lock_task(task_uuid)
    if task is None:
        raise TaskNotFound(f"task {task_uuid} does not exist")
    if task.state.is_terminal:
        raise IllegalTransition(f"cannot cancel task {task_uuid}: it is already {task.state.value}")
    for step in tx.task_steps(task_uuid):
        if step.state in TERMINAL_STEP_STATES:
            continue
        tx.transition_step(
            step.workflow_step_uuid,
            task_uuid,
            step.state,
            StepState.CANCELLED,
            StepEvent.CANCEL.value,
            now,
            changes={
                "processed": True,
                "processed_at": now,
                "in_process": False,
                "claim_token": None,
                "lease_expires_at": None,
            },
        )
    move_task(tx, task, task.state, TaskEvent.CANCEL, now)
