"""``GET /metrics``: Prometheus text, public (events-observability.md §4.1).

Counters come from this process; the gauges are read from the database at scrape time. A
database that cannot be read still yields a scrape (``tasker_health_database_connected 0``),
so an alert can fire on it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

import tasker
from tasker.api.deps import TaskerDep
from tasker.api.metrics import ApiMetrics, Sample, render
from tasker.orchestration.dlq import dlq_stats
from tasker.orchestration.queries import tasks_summary
from tasker.runtime import Tasker

__all__ = ["router"]

log = logging.getLogger("tasker.api")
router = APIRouter(tags=["metrics"])

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _store_gauges(app: Tasker) -> list[Sample]:
    with app.store.read() as tx:
        by_state = tasks_summary(tx)
        pending = sum(row.pending for row in dlq_stats(tx))
    samples = [
        Sample("tasker_tasks_active", "Tasks by state", float(n), {"state": state})
        for state, n in sorted(by_state.items())
    ]
    samples.append(
        Sample(
            "tasker_dlq_pending_investigations",
            "DLQ entries waiting for an operator",
            float(pending),
        )
    )
    return samples


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, app: TaskerDep) -> PlainTextResponse:
    """Counters of this process and gauges read from the database."""
    api_metrics: ApiMetrics = request.app.state.metrics
    gauges = [
        Sample(
            "tasker_orchestration_info", "Build information", 1.0, {"version": tasker.__version__}
        ),
        Sample(
            "tasker_orchestration_running",
            "Whether this process runs workers (1) or only serves the API (0)",
            1.0 if app.worker_id is not None else 0.0,
        ),
    ]
    try:
        store_gauges = _store_gauges(app)
        connected = 1.0
    except Exception:  # a scrape reports a failing database as a gauge, never as a 500
        log.warning("metrics: database gauges unavailable", exc_info=True)
        store_gauges, connected = [], 0.0
    gauges.append(
        Sample("tasker_health_database_connected", "Whether the database answered", connected)
    )
    gauges.extend(store_gauges)
    return PlainTextResponse(render(api_metrics, gauges), media_type=_CONTENT_TYPE)
