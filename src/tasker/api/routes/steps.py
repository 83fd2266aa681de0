"""Steps of a task: list, get, audit trail, and the operator's manual actions (rest-api.md §3.3).

The manual actions are how an operator gets a task out of the DLQ: the step moves, then the task
re-evaluates (or resumes) in the same transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from tasker.api import operations
from tasker.api.deps import (
    ERROR_RESPONSES,
    TaskerDep,
    UuidPath,
    check_json_text,
    check_text,
    operator_name,
    parse_uuid,
    protected,
)
from tasker.api.schemas import (
    CompleteManuallyAction,
    ResetForRetryAction,
    ResolveManuallyAction,
    StepAction,
    StepAuditResponse,
    StepResponse,
)

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/tasks/{task_uuid}/workflow_steps", tags=["steps"], responses=ERROR_RESPONSES
)
JSONObject = dict[str, Any]


def _ids(task_uuid: str, step_uuid: str | None = None) -> tuple[str, str]:
    task = parse_uuid(task_uuid, what="task", code="BAD_REQUEST")
    step = parse_uuid(step_uuid, what="step", code="BAD_REQUEST") if step_uuid is not None else ""
    return task, step


@router.get("", response_model=list[StepResponse], openapi_extra=protected("steps:read"))
def list_steps(task_uuid: UuidPath, app: TaskerDep) -> list[JSONObject]:
    """The task's steps, oldest first; ``[]`` for an unknown task (as the original)."""
    task, _ = _ids(task_uuid)
    return operations.list_steps(app, task)


@router.get("/{step_uuid}", response_model=StepResponse, openapi_extra=protected("steps:read"))
def get_step(task_uuid: UuidPath, step_uuid: UuidPath, app: TaskerDep) -> JSONObject:
    """One step; 404 also when it belongs to another task."""
    return operations.get_step(app, *_ids(task_uuid, step_uuid))


@router.get(
    "/{step_uuid}/audit",
    response_model=list[StepAuditResponse],
    response_model_exclude_none=True,
    openapi_extra=protected("steps:read"),
)
def step_audit(task_uuid: UuidPath, step_uuid: UuidPath, app: TaskerDep) -> list[JSONObject]:
    """Every result a worker stored for the step, oldest first."""
    return operations.step_audit(app, *_ids(task_uuid, step_uuid))


@router.patch("/{step_uuid}", response_model=StepResponse, openapi_extra=protected("steps:resolve"))
def act_on_step(
    task_uuid: UuidPath,
    step_uuid: UuidPath,
    request: Request,
    action: Annotated[StepAction, Body()],
    app: TaskerDep,
) -> JSONObject:
    """Reset, resolve or complete a step by hand; the task then continues (§3.3)."""
    task, step = _ids(task_uuid, step_uuid)
    check_text(action.reason, "reason", max_length=500, required=True)
    result: Any = None
    metadata: Any = None
    if isinstance(action, ResetForRetryAction):
        given = action.reset_by
    elif isinstance(action, ResolveManuallyAction):
        given = action.resolved_by
    else:
        assert isinstance(action, CompleteManuallyAction)
        given = action.completed_by
        result, metadata = action.completion_data.result, action.completion_data.metadata
        check_json_text(result, "completion_data.result")
        check_json_text(metadata, "completion_data.metadata")
    by = operator_name(request, check_text(given, "operator name", max_length=255))
    return operations.act_on_step(
        app,
        task,
        step,
        action.action_type,
        reason=action.reason,
        by=by,
        result=result,
        metadata=metadata,
    )
