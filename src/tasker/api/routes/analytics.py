"""Analytics (rest-api.md §3): declared, not built yet; they answer 501 in the envelope.

Kept as routes so the OpenAPI document, the permission table and clients see them; a client
gets a clear ``NOT_IMPLEMENTED`` instead of a 404 that looks like a wrong URL.
"""

from __future__ import annotations

from fastapi import APIRouter

from tasker.api.deps import ERROR_RESPONSES, protected
from tasker.api.errors import ApiProblem

__all__ = ["router"]

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], responses=ERROR_RESPONSES)

_NOT_BUILT = "Analytics are not implemented by this server yet; use /metrics and /v1/dlq/stats"


@router.get(
    "/performance",
    openapi_extra=protected("system:analytics_read"),
    responses={501: {"description": "Not implemented"}},
)
def performance() -> None:
    """PerformanceMetrics: not implemented (501)."""
    raise ApiProblem(501, "NOT_IMPLEMENTED", _NOT_BUILT)


@router.get(
    "/bottlenecks",
    openapi_extra=protected("system:analytics_read"),
    responses={501: {"description": "Not implemented"}},
)
def bottlenecks() -> None:
    """BottleneckAnalysis: not implemented (501)."""
    raise ApiProblem(501, "NOT_IMPLEMENTED", _NOT_BUILT)
