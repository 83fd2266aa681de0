"""Analytics (rest-api.md §3, §4): performance over a window and bottlenecks.

Read-only aggregates; ``tasker.orchestration.analytics`` defines every figure (what a task's or
a step's duration is, which tasks count as failed, the health score).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tasker.api import operations
from tasker.api.deps import ERROR_RESPONSES, TaskerDep, protected
from tasker.api.errors import ApiProblem
from tasker.api.schemas import BottleneckAnalysis, PerformanceMetrics

__all__ = ["MAX_HOURS", "MAX_MIN_EXECUTIONS", "router"]

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], responses=ERROR_RESPONSES)

MAX_HOURS = 24 * 366
MAX_MIN_EXECUTIONS = 1_000_000_000
JSONObject = dict[str, Any]


def _in_range(value: int, name: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ApiProblem(400, "BAD_REQUEST", f"{name} must be between {low} and {high}")
    return value


@router.get(
    "/performance",
    response_model=PerformanceMetrics,
    openapi_extra=protected("system:analytics_read"),
)
def performance(app: TaskerDep, hours: Annotated[int, Query()] = 24) -> JSONObject:
    """Outcomes, durations, throughput and health of the tasks created in the last ``hours``."""
    return operations.performance_metrics(app, _in_range(hours, "hours", 1, MAX_HOURS))


@router.get(
    "/bottlenecks",
    response_model=BottleneckAnalysis,
    openapi_extra=protected("system:analytics_read"),
)
def bottlenecks(
    app: TaskerDep,
    limit: Annotated[int, Query()] = 10,
    min_executions: Annotated[int, Query()] = 5,
) -> JSONObject:
    """The slowest template steps and templates with at least ``min_executions``, slowest first."""
    return operations.bottlenecks(
        app,
        limit=_in_range(limit, "limit", 1, 100),
        min_executions=_in_range(min_executions, "min_executions", 1, MAX_MIN_EXECUTIONS),
    )
