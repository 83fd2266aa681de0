"""Tasks: create, list, get, cancel, summary (rest-api.md §3, §3.1, §3.2).

Creation goes through ``Tasker.submit`` like every other caller, so identity, limits and
``input_schema`` are the engine's own rules; this module adds only the HTTP-level value rules
(empty names, lengths, storable text, query parameters), answered with 400.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tasker.api import operations
from tasker.api.deps import (
    ERROR_RESPONSES,
    TaskerDep,
    UuidPath,
    check_json_text,
    check_text,
    parse_uuid,
    protected,
)
from tasker.api.errors import ApiProblem
from tasker.api.metrics import ApiMetrics
from tasker.api.schemas import (
    TaskBatchCreateRequest,
    TaskBatchResponse,
    TaskCreateRequest,
    TaskListResponse,
    TaskResponse,
    TaskSummaryResponse,
)
from tasker.domain.model import TaskRequest
from tasker.domain.states import TaskState
from tasker.errors import TemplateNotFound

__all__ = ["router"]

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=ERROR_RESPONSES)

MAX_PAGE = 1_000_000
# A batch is one transaction: bounded so that one request cannot hold the store for long.
MAX_BATCH = 100
_TASK_STATES = tuple(state.value for state in TaskState)
JSONObject = dict[str, Any]


def _uuid_field(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiProblem(400, "BAD_REQUEST", f"{field} must be a UUID") from None


def _task_request(body: TaskCreateRequest) -> TaskRequest:
    """Apply the value rules of rest-api.md §3.1 (400) and build the engine's request."""
    for value, label in (
        (body.name, "Task name"),
        (body.namespace, "Namespace"),
        (body.version, "Version"),
    ):
        if not value.strip():
            raise ApiProblem(400, "BAD_REQUEST", f"{label} cannot be empty")
    check_text(body.name, "name", max_length=255)
    check_text(body.namespace, "namespace", max_length=255)
    check_text(body.version, "version", max_length=50)
    check_text(body.initiator, "initiator", max_length=255, required=body.initiator is not None)
    check_text(
        body.source_system,
        "source_system",
        max_length=255,
        required=body.source_system is not None,
    )
    check_text(body.reason, "reason", max_length=500, required=body.reason is not None)
    check_text(body.idempotency_key, "idempotency_key", max_length=255)
    for index, tag in enumerate(body.tags):
        check_text(tag, f"tags[{index}]", max_length=255)
    check_json_text(body.context, "context")
    check_json_text(body.options, "options")
    fields: dict[str, Any] = {
        "name": body.name,
        "namespace": body.namespace,
        "version": body.version,
        "context": body.context,
        "tags": tuple(body.tags),
        "priority": 0 if body.priority is None else body.priority,
        "correlation_id": _uuid_field(body.correlation_id, "correlation_id"),
        "parent_correlation_id": _uuid_field(body.parent_correlation_id, "parent_correlation_id"),
        "idempotency_key": body.idempotency_key,
        "options": dict(body.options or {}),
    }
    for name in ("initiator", "source_system", "reason"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value
    return TaskRequest(**fields)


@router.post(
    "",
    status_code=201,
    response_model=TaskResponse,
    openapi_extra=protected("tasks:create"),
    responses={409: {"description": "A task with this identity exists (details.task_uuid)"}},
)
def create_task(body: TaskCreateRequest, request: Request, app: TaskerDep) -> JSONObject:
    """Create a task from a registered template; its first steps are already enqueued."""
    task_request = _task_request(body)
    try:
        created = operations.create_task(app, task_request)
    except TemplateNotFound:
        raise ApiProblem(
            404,
            "NOT_FOUND",
            f"Task template not found: {body.namespace}/{body.name}/{body.version}",
        ) from None
    metrics: ApiMetrics = request.app.state.metrics
    metrics.inc(
        "tasker_tasks_requests_total", {"namespace": body.namespace, "task_type": body.name}
    )
    return created


@router.post(
    "/batch",
    status_code=201,
    response_model=TaskBatchResponse,
    openapi_extra=protected("tasks:create"),
    responses={409: {"description": "A request repeats an existing identity (details.task_uuid)"}},
)
def create_tasks(body: TaskBatchCreateRequest, request: Request, app: TaskerDep) -> JSONObject:
    """Create up to 100 tasks in one transaction: all of them, or none when one is refused
    (the error names its position, ``request 2: ...``). Answered in the requests' order."""
    if not 1 <= len(body.tasks) <= MAX_BATCH:
        raise ApiProblem(
            400, "BAD_REQUEST", f"tasks must hold 1 to {MAX_BATCH} requests, got {len(body.tasks)}"
        )
    requests = []
    for index, item in enumerate(body.tasks):
        try:
            requests.append(_task_request(item))
        except ApiProblem as problem:
            raise ApiProblem(
                problem.status, problem.code, f"request {index}: {problem.message}"
            ) from None
    try:
        created = operations.create_tasks(app, requests)
    except TemplateNotFound as exc:
        raise ApiProblem(404, "NOT_FOUND", str(exc)) from None
    metrics: ApiMetrics = request.app.state.metrics
    for item in body.tasks:
        metrics.inc(
            "tasker_tasks_requests_total", {"namespace": item.namespace, "task_type": item.name}
        )
    return {"tasks": created}


@router.get("", response_model=TaskListResponse, openapi_extra=protected("tasks:list"))
def list_tasks(
    app: TaskerDep,
    page: Annotated[int, Query()] = 1,
    per_page: Annotated[int, Query()] = 25,
    namespace: Annotated[str | None, Query(max_length=255)] = None,
    status: Annotated[str | None, Query(max_length=64)] = None,
    initiator: Annotated[str | None, Query(max_length=255)] = None,
    source_system: Annotated[str | None, Query(max_length=255)] = None,
) -> JSONObject:
    """A page of tasks, newest first, with filters (rest-api.md §3.2)."""
    if page < 1:
        raise ApiProblem(400, "BAD_REQUEST", "page must be >= 1")
    if page > MAX_PAGE:
        raise ApiProblem(400, "BAD_REQUEST", f"page must be <= {MAX_PAGE}")
    if not 1 <= per_page <= 100:
        raise ApiProblem(400, "BAD_REQUEST", "per_page must be between 1 and 100")
    if status is not None and status not in _TASK_STATES:
        raise ApiProblem(400, "BAD_REQUEST", f"status must be one of: {', '.join(_TASK_STATES)}")
    for value, label in (
        (namespace, "namespace"),
        (initiator, "initiator"),
        (source_system, "source_system"),
    ):
        check_text(value, label, max_length=255)
    return operations.list_tasks(
        app,
        page=page,
        per_page=per_page,
        namespace=namespace,
        status=status,
        initiator=initiator,
        source_system=source_system,
    )


@router.get("/{task_uuid}", response_model=TaskResponse, openapi_extra=protected("tasks:read"))
def get_task(task_uuid: UuidPath, app: TaskerDep) -> JSONObject:
    """One task with its counts, status and step readiness."""
    return operations.get_task(app, parse_uuid(task_uuid))


@router.delete("/{task_uuid}", response_model=TaskResponse, openapi_extra=protected("tasks:cancel"))
def cancel_task(task_uuid: UuidPath, app: TaskerDep) -> JSONObject:
    """Cancel the task and its unfinished steps; 400 when it already finished."""
    return operations.cancel_task(app, parse_uuid(task_uuid))


@router.get(
    "/{task_uuid}/summary",
    response_model=TaskSummaryResponse,
    openapi_extra=protected("tasks:read"),
)
def task_summary(task_uuid: UuidPath, app: TaskerDep) -> JSONObject:
    """The task, its template's steps, its steps' states and errors, and its DLQ status."""
    return operations.task_summary(app, parse_uuid(task_uuid))
