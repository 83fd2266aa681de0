"""Read models for the REST API and the operator CLI: tasks, steps, result audit (rest-api.md §4).

Nothing here writes. Each shape is a frozen dataclass whose field names are the REST API's
(``status`` is a task's state there); datetimes are aware UTC values and ``to_dict()`` gives
the JSON form. Lists are paged: at most ``MAX_PAGE_SIZE`` rows per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from tasker.domain.model import JSON, ExecutionStatus, JSONObject, StepRecord, TaskRecord
from tasker.domain.readiness import status_from_counts
from tasker.domain.states import SATISFIED_STEP_STATES, StepState, TaskState
from tasker.errors import StepNotFound, TaskNotFound
from tasker.store.base import Transaction

__all__ = [
    "MAX_PAGE_SIZE",
    "JsonShape",
    "StepAuditRecord",
    "StepDetail",
    "TaskDetail",
    "clamp_page",
    "health_status",
    "list_task_steps",
    "list_tasks",
    "step_audit_history",
    "step_detail",
    "task_detail",
    "tasks_summary",
    "to_json",
]

MAX_PAGE_SIZE = 100


def clamp_page(limit: int, offset: int = 0) -> tuple[int, int]:
    """A page size in 1..``MAX_PAGE_SIZE`` and an offset ≥ 0, whatever the caller asked for."""
    return max(1, min(int(limit), MAX_PAGE_SIZE)), max(0, int(offset))


def to_json(value: Any) -> JSON:
    """``value`` with dataclasses, datetimes, enums and tuples turned into JSON types."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


class JsonShape:
    """Base of the read models: ``to_dict()`` is their JSON form (datetimes as ISO-8601)."""

    __slots__ = ()

    def to_dict(self) -> JSONObject:
        """The JSON form (datetimes as ISO-8601 strings, tuples as lists)."""
        out: JSONObject = to_json(self)
        return out


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


@dataclass(frozen=True, slots=True)
class StepDetail(JsonShape):
    """One step with its readiness: the fields of StepResponse and StepReadiness."""

    step_uuid: str
    task_uuid: str
    name: str
    template_step_name: str
    current_state: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    results: JSONObject | None
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    total_parents: int
    completed_parents: int
    attempts: int
    max_attempts: int
    retryable: bool
    backoff_request_seconds: float | None
    last_failure_at: datetime | None
    next_retry_at: datetime | None
    last_attempted_at: datetime | None


@dataclass(frozen=True, slots=True)
class TaskDetail(JsonShape):
    """One task with its step counts and §5.1 status: the fields of TaskResponse.

    ``steps`` is filled by ``task_detail`` (and by ``list_tasks(include_steps=True)``).
    """

    task_uuid: str
    name: str
    namespace: str
    version: str
    status: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    context: JSONObject
    initiator: str
    source_system: str
    reason: str
    priority: int
    tags: tuple[str, ...]
    correlation_id: str
    parent_correlation_id: str | None
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    execution_status: str
    recommended_action: str
    completion_percentage: float
    health_status: str
    steps: tuple[StepDetail, ...] = ()


@dataclass(frozen=True, slots=True)
class StepAuditRecord:
    """One stored step result with its transition: the fields of StepAuditResponse.

    ``result`` is the stored result document when it is still known: from the transition's
    metadata, or for the latest record the step's current ``results`` (the store keeps only the
    latest document; an operator's manual completion replaces it and is not a worker result).
    """

    audit_uuid: str
    workflow_step_uuid: str
    transition_uuid: str
    task_uuid: str
    recorded_at: datetime
    worker_uuid: str | None
    correlation_id: str | None
    success: bool
    execution_time_ms: float | None
    attempt: int
    step_name: str
    from_state: str | None
    to_state: str | None
    result: JSONObject | None = None

    def to_dict(self) -> JSONObject:
        """The JSON form; optional keys that are null are left out (rest-api.md §4)."""
        optional = {
            "worker_uuid",
            "correlation_id",
            "execution_time_ms",
            "result",
            "from_state",
        }
        data: JSONObject = to_json(self)
        return {k: v for k, v in data.items() if not (k in optional and v is None)}


# -- tasks ------------------------------------------------------------------------------------


def health_status(counts: Mapping[str, int]) -> str:
    """``blocked`` with a failed step, ``recovering`` while a step backs off, else ``healthy``."""
    if counts.get("error_steps", 0):
        return "blocked"
    if counts.get("retrying_steps", 0):
        return "recovering"
    return "healthy"


def _status(counts: Mapping[str, int]) -> ExecutionStatus:
    return status_from_counts(
        total=counts["total_steps"],
        ready=counts["ready_steps"],
        error=counts["error_steps"],
        pipeline=counts["pipeline_steps"],
        in_progress=counts["in_progress_steps"],
        satisfied=counts["satisfied_steps"],
        pending=counts["pending_steps"],
    )


def _task_detail(
    task: TaskRecord, counts: Mapping[str, int], steps: Sequence[StepDetail] = ()
) -> TaskDetail:
    status = _status(counts)
    return TaskDetail(
        task_uuid=task.task_uuid,
        name=task.name,
        namespace=task.namespace,
        version=task.version,
        status=task.state.value,
        created_at=task.created_at,
        updated_at=task.updated_at,
        completed_at=task.completed_at,
        context=task.context,
        initiator=task.initiator,
        source_system=task.source_system,
        reason=task.reason,
        priority=task.priority,
        tags=tuple(task.tags),
        correlation_id=task.correlation_id,
        parent_correlation_id=task.parent_correlation_id,
        total_steps=status.total_steps,
        pending_steps=status.pending_steps,
        in_progress_steps=status.in_progress_steps,
        completed_steps=status.completed_steps,
        failed_steps=status.failed_steps,
        ready_steps=status.ready_steps,
        execution_status=status.execution_status,
        recommended_action=status.recommended_action,
        completion_percentage=status.completion_percentage,
        health_status=health_status(counts),
        steps=tuple(steps),
    )


def list_tasks(
    tx: Transaction,
    *,
    namespace: str | None = None,
    name: str | None = None,
    status: str | None = None,
    initiator: str | None = None,
    source_system: str | None = None,
    limit: int = 50,
    offset: int = 0,
    include_steps: bool = False,
    now: datetime | None = None,
) -> tuple[list[TaskDetail], int]:
    """One page of tasks, newest first, and how many tasks match in all.

    Args:
        tx: a read (or write) transaction.
        namespace, name, status, initiator, source_system: filters; ``None`` matches all.
            ``status`` is a task state (rest-api.md §3.2).
        limit: page size, clamped to 1..100.
        offset: rows to skip.
        include_steps: also fill each task's ``steps`` (one more query per task).
        now: the time readiness is judged at; default: the current time.

    Returns:
        ``(tasks, total_count)``.
    """
    limit, offset = clamp_page(limit, offset)
    at = _now(now)
    filters = {
        "namespace": namespace,
        "name": name,
        "status": status,
        "initiator": initiator,
        "source_system": source_system,
    }
    rows = tx.task_page(filters, now=at, limit=limit, offset=offset)
    tasks = [
        _task_detail(task, counts, _steps(tx, task.task_uuid, None, at) if include_steps else ())
        for task, counts in rows
    ]
    return tasks, tx.task_count(filters)


def task_detail(tx: Transaction, task_uuid: str, *, now: datetime | None = None) -> TaskDetail:
    """One task with its counts, status and steps (GET /v1/tasks/{uuid}).

    Raises:
        TaskNotFound: no such task.
    """
    at = _now(now)
    rows = tx.task_page({}, now=at, limit=1, offset=0, task_uuid=task_uuid)
    if not rows:
        raise TaskNotFound(f"task {task_uuid} does not exist")
    task, counts = rows[0]
    return _task_detail(task, counts, _steps(tx, task_uuid, None, at))


def tasks_summary(tx: Transaction) -> dict[str, int]:
    """How many tasks are in each state; every state is present, with 0 when none."""
    found = tx.task_state_totals()
    return {state.value: found.get(state.value, 0) for state in TaskState}


# -- steps ------------------------------------------------------------------------------------


def _step_detail(
    step: StepRecord,
    total_parents: int,
    completed_parents: int,
    last_failure_at: datetime | None,
    now: datetime,
) -> StepDetail:
    """Readiness by the rules of execution.md §5, from one step row and its parent counts."""
    satisfied = completed_parents >= total_parents
    retry_eligible = step.attempts == 0 or (step.retryable and step.attempts < step.max_attempts)
    ready = (
        step.state in (StepState.PENDING, StepState.WAITING_FOR_RETRY)
        and not step.processed
        and not step.in_process
        and satisfied
        and retry_eligible
        and (step.next_retry_at is None or step.next_retry_at <= now)
    )
    return StepDetail(
        step_uuid=step.workflow_step_uuid,
        task_uuid=step.task_uuid,
        name=step.name,
        template_step_name=step.template_step_name,
        current_state=step.state.value,
        created_at=step.created_at,
        updated_at=step.updated_at,
        completed_at=step.processed_at if step.state in SATISFIED_STEP_STATES else None,
        results=step.results,
        dependencies_satisfied=satisfied,
        retry_eligible=retry_eligible,
        ready_for_execution=ready,
        total_parents=total_parents,
        completed_parents=completed_parents,
        attempts=step.attempts,
        max_attempts=step.max_attempts,
        retryable=step.retryable,
        backoff_request_seconds=step.backoff_request_seconds,
        last_failure_at=last_failure_at,
        next_retry_at=step.next_retry_at,
        last_attempted_at=step.last_attempted_at,
    )


def _steps(
    tx: Transaction, task_uuid: str, step_uuid: str | None, now: datetime
) -> list[StepDetail]:
    return [
        _step_detail(step, total, completed, failed_at, now)
        for step, total, completed, failed_at in tx.step_readiness(task_uuid, step_uuid)
    ]


def list_task_steps(
    tx: Transaction, task_uuid: str, *, now: datetime | None = None
) -> list[StepDetail]:
    """The task's steps, oldest first; ``[]`` for an unknown task (rest-api.md §3)."""
    return _steps(tx, task_uuid, None, _now(now))


def step_detail(
    tx: Transaction, task_uuid: str, step_uuid: str, *, now: datetime | None = None
) -> StepDetail:
    """One step of a task.

    Raises:
        StepNotFound: no such step in this task (also when it belongs to another task).
    """
    found = _steps(tx, task_uuid, step_uuid, _now(now))
    if not found:
        raise StepNotFound(f"step {step_uuid} does not exist in task {task_uuid}")
    return found[0]


def step_audit_history(tx: Transaction, task_uuid: str, step_uuid: str) -> list[StepAuditRecord]:
    """Every result a worker stored for the step, oldest first (states.md §3.2).

    Raises:
        StepNotFound: no such step in this task.
    """
    step = tx.get_step(step_uuid)
    if step is None or step.task_uuid != task_uuid:
        raise StepNotFound(f"step {step_uuid} does not exist in task {task_uuid}")
    rows = tx.step_audit(task_uuid, step_uuid)
    records: list[StepAuditRecord] = []
    for index, row in enumerate(rows):
        metadata = row["transition_metadata"] or {}
        result = metadata.get("result") if isinstance(metadata, dict) else None
        if result is None and index == len(rows) - 1:
            result = _latest_worker_document(step)
        records.append(
            StepAuditRecord(
                audit_uuid=str(row["audit_uuid"]),
                workflow_step_uuid=str(row["workflow_step_uuid"]),
                transition_uuid=str(row["transition_uuid"]),
                task_uuid=str(row["task_uuid"]),
                recorded_at=row["recorded_at"],
                worker_uuid=row["worker_uuid"],
                correlation_id=row["correlation_id"],
                success=row["success"],
                execution_time_ms=row["execution_time_ms"],
                attempt=int(row["attempt"]),
                step_name=row["step_name"],
                from_state=row["from_state"],
                to_state=row["to_state"],
                result=result if isinstance(result, dict) else None,
            )
        )
    return records


def _latest_worker_document(step: StepRecord) -> JSONObject | None:
    """The step's stored document, unless an operator's manual completion replaced it."""
    document = step.results
    if not isinstance(document, dict):
        return None
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and metadata.get("manually_completed") is True:
        return None
    return document
