"""Health probes (rest-api.md §3, §4 "Health"): always public, never behind auth.

``/health`` and ``/health/live`` say only that the process answers; ``/health/ready`` asks the
database and answers 503 while it cannot be reached (reliability.md R3.3), so a load balancer
stops sending traffic; ``/health/detailed`` always answers 200 with what it found.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request

import tasker
from tasker.api.deps import TaskerDep, format_ts, now
from tasker.api.errors import RETRY_AFTER_S, ApiProblem
from tasker.api.schemas import ErrorEnvelope, HealthCheck, HealthDetail, HealthResponse
from tasker.runtime import Tasker

__all__ = ["database_check", "router"]

log = logging.getLogger("tasker.api")
router = APIRouter(tags=["health"])

_NIL_UUID = "00000000-0000-0000-0000-000000000000"


def database_check(app: Tasker) -> HealthCheck:
    """One cheap indexed read; any failure is ``unhealthy`` (details go to the log only)."""
    started = time.perf_counter()
    try:
        with app.store.read() as tx:
            tx.get_task(_NIL_UUID)
    except Exception:  # a probe reports every failure as a status, never as a 500
        log.warning("database check failed", exc_info=True)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return HealthCheck(status="unhealthy", message="database unreachable", duration_ms=elapsed)
    elapsed = round((time.perf_counter() - started) * 1000, 3)
    return HealthCheck(
        status="healthy", message=f"{app.store.backend} reachable", duration_ms=elapsed
    )


def _checks(request: Request, app: Tasker, *, detailed: bool) -> dict[str, HealthCheck]:
    db = database_check(app)
    workers = app.worker_id is not None
    checks = {
        "web_database": db,
        "orchestration_database": db,
        "circuit_breaker": HealthCheck(
            status="healthy", message="no circuit breaker: closed", duration_ms=0.0
        ),
        "orchestration_system": HealthCheck(
            status="healthy",
            message="workers running in this process" if workers else "API only (no workers)",
            duration_ms=0.0,
        ),
        "command_processor": HealthCheck(
            status="unhealthy" if _shutting_down(request) else "healthy",
            message="shutting down" if _shutting_down(request) else "in-process",
            duration_ms=0.0,
        ),
    }
    if detailed:
        for name in ("pool_utilization", "queue_depth", "channel_saturation"):
            checks[name] = HealthCheck(status="healthy", message="not measured", duration_ms=0.0)
    return checks


def _shutting_down(request: Request) -> bool:
    return bool(getattr(request.app.state, "shutting_down", False))


def _info(request: Request, app: Tasker) -> dict[str, Any]:
    pool = int(getattr(app.store, "pool_size", 1))
    return {
        "version": tasker.__version__,
        "environment": app.settings.env,
        "operational_state": "shutting_down" if _shutting_down(request) else "running",
        "database_backend": app.store.backend,
        "web_database_pool_size": pool,
        "orchestration_database_pool_size": pool,
        "circuit_breaker_state": "closed",
        "workers_running": app.worker_id is not None,
    }


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """The process answers (200 even while shutting down)."""
    return HealthResponse(status="healthy", timestamp=format_ts(now()) or "")


@router.get("/health/live", response_model=HealthResponse)
async def live() -> HealthResponse:
    """Liveness: the event loop runs."""
    return HealthResponse(status="alive", timestamp=format_ts(now()) or "")


@router.get(
    "/health/ready",
    response_model=HealthDetail,
    responses={503: {"model": ErrorEnvelope, "description": "Not ready"}},
)
def ready(request: Request, app: TaskerDep) -> HealthDetail:
    """Readiness: the database answers and the process is not shutting down; else 503."""
    checks = _checks(request, app, detailed=False)
    failing = sorted(name for name, c in checks.items() if c.status == "unhealthy")
    if failing:
        raise ApiProblem(
            503,
            "SERVICE_UNAVAILABLE",
            f"Not ready: {', '.join(failing)}",
            details={"checks": {k: v.model_dump() for k, v in checks.items()}},
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return HealthDetail(
        status="ready", timestamp=format_ts(now()) or "", checks=checks, info=_info(request, app)
    )


@router.get("/health/detailed", response_model=HealthDetail)
def detailed(request: Request, app: TaskerDep) -> HealthDetail:
    """Every check, always 200: ``healthy`` or ``degraded``."""
    checks = _checks(request, app, detailed=True)
    degraded = any(c.status in ("unhealthy", "degraded") for c in checks.values())
    return HealthDetail(
        status="degraded" if degraded else "healthy",
        timestamp=format_ts(now()) or "",
        checks=checks,
        info=_info(request, app),
    )
