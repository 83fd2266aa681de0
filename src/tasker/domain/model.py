"""The shapes that cross layers: tasks, steps, claims and creation requests.

Plain frozen dataclasses; JSON payloads (contexts, results, checkpoints) stay ``JSON`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasker.domain.states import StepState, TaskState

__all__ = [
    "JSON",
    "Claim",
    "ExecutionStatus",
    "JSONObject",
    "StepRecord",
    "Successors",
    "TaskRecord",
    "TaskRequest",
    "TransitionRecord",
]

JSON = Any
"""A JSON value (the payloads we store are open by nature)."""
JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """What a caller asks for when creating a task (execution.md §2)."""

    name: str
    namespace: str = "default"
    version: str = "1.0.0"
    context: JSON = field(default_factory=dict)
    initiator: str = "system"
    source_system: str = "tasker"
    reason: str = "Task requested"
    tags: tuple[str, ...] = ()
    priority: int = 0
    correlation_id: str | None = None
    parent_correlation_id: str | None = None
    idempotency_key: str | None = None
    options: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    task_uuid: str
    named_task_uuid: str
    namespace: str
    name: str
    version: str
    state: TaskState
    context: JSONObject
    identity_hash: str
    initiator: str
    source_system: str
    reason: str
    tags: list[str]
    priority: int
    correlation_id: str
    parent_correlation_id: str | None
    requested_at: datetime
    created_at: datetime
    updated_at: datetime
    complete: bool
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class StepRecord:
    workflow_step_uuid: str
    task_uuid: str
    name: str
    template_step_name: str
    state: StepState
    retryable: bool
    max_attempts: int
    attempts: int
    in_process: bool
    processed: bool
    processed_at: datetime | None
    last_attempted_at: datetime | None
    backoff_request_seconds: float | None
    next_retry_at: datetime | None
    inputs: JSONObject | None
    results: JSONObject | None
    checkpoint: JSONObject | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    entity_uuid: str
    from_state: str | None
    to_state: str
    event: str | None
    sort_key: int
    most_recent: bool
    metadata: JSONObject
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Successors:
    """A claimed step's children as its claim read them, for predicting the pass that its
    plain success starts (ADR 0023): each child's uuid and number of parents, in creation
    order, and the task's namespace and template. ``last``: the step has no children and
    every other step of its task was complete when it was claimed."""

    namespace: str
    named_task_uuid: str
    children: tuple[tuple[str, int], ...]
    last: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's lease on one step. ``token`` fences every write made under it (R1.4).

    ``successors``: the step's children when the store read them with the claim
    (PostgreSQL), else ``None``."""

    task_uuid: str
    step_uuid: str
    token: str
    worker_id: str
    attempts_before: int
    lease_expires_at: datetime
    successors: Successors | None = None


@dataclass(frozen=True, slots=True)
class ExecutionStatus:
    """A task's step counts and what to do next (execution.md §5.1)."""

    execution_status: str
    recommended_action: str
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    enqueued_steps: int

    @property
    def completion_percentage(self) -> float:
        if self.total_steps == 0:
            return 0.0
        return round(100.0 * self.completed_steps / self.total_steps, 2)
