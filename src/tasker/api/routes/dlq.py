"""The dead letter queue: investigation records, triage and staleness (rest-api.md §3, §3.4).

These routes only read and annotate entries; fixing the task happens through the step actions
(``PATCH /v1/tasks/{uuid}/workflow_steps/{step}``), as in the original.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

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
from tasker.api.schemas import (
    DlqEntry,
    DlqInvestigationQueueEntry,
    DlqStats,
    DlqUpdateRequest,
    DlqUpdateResponse,
    StalenessMonitoring,
)
from tasker.orchestration.dlq import RESOLUTION_STATUSES

__all__ = ["router"]

router = APIRouter(prefix="/v1/dlq", tags=["dlq"], responses=ERROR_RESPONSES)

MAX_OFFSET = 1_000_000_000
JSONObject = dict[str, Any]


def _limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise ApiProblem(400, "BAD_REQUEST", "limit must be between 1 and 100")
    return limit


@router.get("", response_model=list[DlqEntry], openapi_extra=protected("dlq:read"))
def list_entries(
    app: TaskerDep,
    resolution_status: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query()] = 50,
    offset: Annotated[int, Query()] = 0,
) -> list[JSONObject]:
    """Entries, newest ``dlq_timestamp`` first, optionally of one resolution status."""
    if resolution_status is not None and resolution_status not in RESOLUTION_STATUSES:
        raise ApiProblem(
            400,
            "BAD_REQUEST",
            f"resolution_status must be one of: {', '.join(RESOLUTION_STATUSES)}",
        )
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiProblem(400, "BAD_REQUEST", f"offset must be between 0 and {MAX_OFFSET}")
    return operations.list_dlq(
        app, resolution_status=resolution_status, limit=_limit(limit), offset=offset
    )


@router.get("/task/{task_uuid}", response_model=DlqEntry, openapi_extra=protected("dlq:read"))
def entry_for_task(task_uuid: UuidPath, app: TaskerDep) -> JSONObject:
    """The task's latest entry (pending or resolved); 404 when it never had one."""
    return operations.dlq_entry_for_task(app, parse_uuid(task_uuid))


@router.patch(
    "/entry/{dlq_entry_uuid}",
    response_model=DlqUpdateResponse,
    openapi_extra=protected("dlq:update"),
)
def update_entry(dlq_entry_uuid: UuidPath, body: DlqUpdateRequest, app: TaskerDep) -> JSONObject:
    """Record the investigation's outcome (status, notes, who, metadata)."""
    parsed = parse_uuid(dlq_entry_uuid)
    check_text(body.resolution_notes, "resolution_notes", max_length=10_000)
    check_text(body.resolved_by, "resolved_by", max_length=255)
    check_json_text(body.metadata, "metadata")
    return operations.update_dlq_entry(
        app,
        parsed,
        resolution_status=body.resolution_status,
        resolution_notes=body.resolution_notes,
        resolved_by=body.resolved_by,
        metadata=body.metadata,
    )


@router.get("/stats", response_model=list[DlqStats], openapi_extra=protected("dlq:stats"))
def stats(app: TaskerDep) -> list[JSONObject]:
    """One row per reason, counted by resolution status."""
    return operations.dlq_stats(app)


@router.get(
    "/investigation-queue",
    response_model=list[DlqInvestigationQueueEntry],
    openapi_extra=protected("dlq:read"),
)
def investigation_queue(app: TaskerDep, limit: Annotated[int, Query()] = 50) -> list[JSONObject]:
    """Pending entries, highest ``priority_score`` first."""
    return operations.investigation_queue(app, _limit(limit))


@router.get(
    "/staleness", response_model=list[StalenessMonitoring], openapi_extra=protected("dlq:read")
)
def staleness(app: TaskerDep, limit: Annotated[int, Query()] = 50) -> list[JSONObject]:
    """Unfinished tasks against their staleness thresholds, the most overdue first."""
    return operations.staleness(app, _limit(limit))
