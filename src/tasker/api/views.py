"""Read models to the JSON shapes of rest-api.md §4, as plain dicts.

Plain functions with no web framework in them, so the server and the operator CLI's direct
mode (``tasker task get --database-url ...``) print the very same documents; the routes
validate these dicts into their response models.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tasker.domain.template import TaskTemplate
from tasker.orchestration.analytics import BottleneckAnalysis, PerformanceMetrics
from tasker.orchestration.dlq import (
    DlqEntry,
    DlqInvestigationQueueEntry,
    DlqStats,
    StalenessMonitoring,
)
from tasker.orchestration.queries import StepAuditRecord, StepDetail, TaskDetail

__all__ = [
    "audit_view",
    "bottleneck_view",
    "dlq_entry_view",
    "dlq_stats_view",
    "format_ts",
    "investigation_view",
    "named_step_uuid",
    "performance_view",
    "staleness_view",
    "step_view",
    "task_summary_view",
    "task_view",
    "template_detail_view",
    "template_list_view",
]

JSONObject = dict[str, Any]


def format_ts(value: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (rest-api.md §1), or ``None``."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def named_step_uuid(task: TaskDetail, step: StepDetail) -> str:
    """A stable id for a template step: the same for every task of one template version.

    Our store has no named-step table; the id is derived from what names a template step.
    """
    key = f"tasker:{task.namespace}/{task.name}@{task.version}/{step.template_step_name}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def _readiness(task: TaskDetail, step: StepDetail) -> JSONObject:
    return {
        "workflow_step_uuid": step.step_uuid,
        "task_uuid": step.task_uuid,
        "named_step_uuid": named_step_uuid(task, step),
        "name": step.name,
        "current_state": step.current_state,
        "dependencies_satisfied": step.dependencies_satisfied,
        "retry_eligible": step.retry_eligible,
        "ready_for_execution": step.ready_for_execution,
        "last_failure_at": format_ts(step.last_failure_at),
        "next_retry_at": format_ts(step.next_retry_at),
        "total_parents": step.total_parents,
        "completed_parents": step.completed_parents,
        "attempts": step.attempts,
        "max_attempts": step.max_attempts,
        "backoff_request_seconds": step.backoff_request_seconds,
        "last_attempted_at": format_ts(step.last_attempted_at),
    }


def _task_scalars(task: TaskDetail) -> JSONObject:
    return {
        "task_uuid": task.task_uuid,
        "name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "status": task.status,
        "created_at": format_ts(task.created_at),
        "updated_at": format_ts(task.updated_at),
        "completed_at": format_ts(task.completed_at),
        "initiator": task.initiator,
        "source_system": task.source_system,
        "reason": task.reason,
        "priority": task.priority,
        "tags": list(task.tags),
        "correlation_id": task.correlation_id,
        "parent_correlation_id": task.parent_correlation_id,
        "total_steps": task.total_steps,
        "pending_steps": task.pending_steps,
        "in_progress_steps": task.in_progress_steps,
        "completed_steps": task.completed_steps,
        "failed_steps": task.failed_steps,
        "ready_steps": task.ready_steps,
        "execution_status": task.execution_status,
        "recommended_action": task.recommended_action,
        "completion_percentage": task.completion_percentage,
        "health_status": task.health_status,
    }


def task_view(task: TaskDetail) -> JSONObject:
    """``TaskResponse``."""
    return {
        **_task_scalars(task),
        "context": task.context,
        "steps": [_readiness(task, step) for step in task.steps],
    }


def step_view(step: StepDetail) -> JSONObject:
    """``StepResponse``; ``results`` is the stored envelope."""
    return {
        "step_uuid": step.step_uuid,
        "task_uuid": step.task_uuid,
        "name": step.name,
        "created_at": format_ts(step.created_at),
        "updated_at": format_ts(step.updated_at),
        "completed_at": format_ts(step.completed_at),
        "results": step.results,
        "current_state": step.current_state,
        "dependencies_satisfied": step.dependencies_satisfied,
        "retry_eligible": step.retry_eligible,
        "ready_for_execution": step.ready_for_execution,
        "total_parents": step.total_parents,
        "completed_parents": step.completed_parents,
        "attempts": step.attempts,
        "max_attempts": step.max_attempts,
        "last_failure_at": format_ts(step.last_failure_at),
        "next_retry_at": format_ts(step.next_retry_at),
        "last_attempted_at": format_ts(step.last_attempted_at),
    }


def audit_view(record: StepAuditRecord) -> JSONObject:
    """``StepAuditResponse``; optional keys are left out when null."""
    data: JSONObject = {
        "audit_uuid": record.audit_uuid,
        "workflow_step_uuid": record.workflow_step_uuid,
        "transition_uuid": record.transition_uuid,
        "task_uuid": record.task_uuid,
        "recorded_at": format_ts(record.recorded_at),
        "worker_uuid": record.worker_uuid,
        "correlation_id": record.correlation_id,
        "success": bool(record.success),
        "execution_time_ms": record.execution_time_ms,
        "result": record.result,
        "step_name": record.step_name,
        "from_state": record.from_state,
        "to_state": record.to_state or "",
    }
    return {k: v for k, v in data.items() if v is not None}


def _step_error(step: StepDetail) -> JSONObject | None:
    document = step.results or {}
    if step.current_state not in ("error", "waiting_for_retry") or document.get("success"):
        return None
    error = document.get("error")
    error = error if isinstance(error, dict) else {}
    status_code = error.get("status_code")
    error_type = error.get("error_type")
    return {
        "error_type": None if error_type is None else str(error_type),
        "retryable": bool(error.get("retryable", False)),
        "status_code": status_code if isinstance(status_code, int) else None,
    }


def task_summary_view(
    task: TaskDetail, template: TaskTemplate | None, entry: DlqEntry | None
) -> JSONObject:
    """``TaskSummaryResponse``: the task, its template's steps, step states, DLQ status."""
    return {
        "task": _task_scalars(task),
        "template": {
            "steps": [
                {
                    "name": step.name,
                    "step_type": step.type.value,
                    "handler": step.handler.callable,
                    "dependencies": list(step.dependencies),
                    "retryable": step.retry.retryable,
                    "max_attempts": step.retry.max_attempts,
                }
                for step in (template.steps if template is not None else ())
            ]
        },
        "steps": [
            {
                "step_uuid": step.step_uuid,
                "name": step.name,
                "current_state": step.current_state,
                "created_at": format_ts(step.created_at),
                "completed_at": format_ts(step.completed_at),
                "last_attempted_at": format_ts(step.last_attempted_at),
                "attempts": step.attempts,
                "max_attempts": step.max_attempts,
                "dependencies_satisfied": step.dependencies_satisfied,
                "retry_eligible": step.retry_eligible,
                "error": _step_error(step),
            }
            for step in task.steps
        ],
        "dlq": {
            "in_dlq": entry is not None and entry.resolution_status == "pending",
            "dlq_reason": entry.dlq_reason if entry else None,
            "resolution_status": entry.resolution_status if entry else None,
        },
        "links": {
            "task": f"/v1/tasks/{task.task_uuid}",
            "steps": f"/v1/tasks/{task.task_uuid}/workflow_steps",
            "dlq": "/v1/dlq",
        },
    }


def dlq_entry_view(entry: DlqEntry) -> JSONObject:
    """``DlqEntry``."""
    return {
        "dlq_entry_uuid": entry.dlq_entry_uuid,
        "task_uuid": entry.task_uuid,
        "original_state": entry.original_state,
        "dlq_reason": entry.dlq_reason,
        "dlq_timestamp": format_ts(entry.dlq_timestamp),
        "resolution_status": entry.resolution_status,
        "resolution_timestamp": format_ts(entry.resolution_timestamp),
        "resolution_notes": entry.resolution_notes,
        "resolved_by": entry.resolved_by,
        "task_snapshot": entry.task_snapshot,
        "metadata": entry.metadata,
        "created_at": format_ts(entry.created_at),
        "updated_at": format_ts(entry.updated_at),
    }


def dlq_stats_view(row: DlqStats) -> JSONObject:
    """``DlqStats``."""
    return {
        "dlq_reason": row.dlq_reason,
        "total_entries": row.total_entries,
        "pending": row.pending,
        "manually_resolved": row.manually_resolved,
        "permanent_failures": row.permanent_failures,
        "cancelled": row.cancelled,
        "oldest_entry": format_ts(row.oldest_entry),
        "newest_entry": format_ts(row.newest_entry),
        "avg_resolution_time_minutes": row.avg_resolution_time_minutes,
    }


def investigation_view(row: DlqInvestigationQueueEntry) -> JSONObject:
    """``DlqInvestigationQueueEntry``."""
    return {
        "dlq_entry_uuid": row.dlq_entry_uuid,
        "task_uuid": row.task_uuid,
        "original_state": row.original_state,
        "dlq_reason": row.dlq_reason,
        "dlq_timestamp": format_ts(row.dlq_timestamp),
        "minutes_in_dlq": row.minutes_in_dlq,
        "namespace_name": row.namespace_name,
        "task_name": row.task_name,
        "current_state": row.current_state,
        "time_in_state_minutes": row.time_in_state_minutes,
        "priority_score": row.priority_score,
    }


def staleness_view(row: StalenessMonitoring) -> JSONObject:
    """``StalenessMonitoring``."""
    return {
        "task_uuid": row.task_uuid,
        "namespace_name": row.namespace_name,
        "task_name": row.task_name,
        "current_state": row.current_state,
        "time_in_state_minutes": row.time_in_state_minutes,
        "task_age_minutes": row.task_age_minutes,
        "staleness_threshold_minutes": row.staleness_threshold_minutes,
        "health_status": row.health_status,
        "priority": row.priority,
    }


def performance_view(metrics: PerformanceMetrics) -> JSONObject:
    """``PerformanceMetrics``."""
    return {
        "total_tasks": metrics.total_tasks,
        "active_tasks": metrics.active_tasks,
        "completed_tasks": metrics.completed_tasks,
        "failed_tasks": metrics.failed_tasks,
        "completion_rate": metrics.completion_rate,
        "error_rate": metrics.error_rate,
        "average_task_duration_seconds": metrics.average_task_duration_seconds,
        "average_step_duration_seconds": metrics.average_step_duration_seconds,
        "tasks_per_hour": metrics.tasks_per_hour,
        "steps_per_hour": metrics.steps_per_hour,
        "system_health_score": metrics.system_health_score,
        "analysis_period_start": format_ts(metrics.analysis_period_start),
        "calculated_at": format_ts(metrics.calculated_at),
    }


def bottleneck_view(analysis: BottleneckAnalysis) -> JSONObject:
    """``BottleneckAnalysis``."""
    return {
        "slow_steps": [
            {
                "namespace_name": s.namespace_name,
                "task_name": s.task_name,
                "version": s.version,
                "step_name": s.step_name,
                "average_duration_seconds": s.average_duration_seconds,
                "max_duration_seconds": s.max_duration_seconds,
                "execution_count": s.execution_count,
                "error_count": s.error_count,
                "error_rate": s.error_rate,
                "last_executed_at": format_ts(s.last_executed_at),
            }
            for s in analysis.slow_steps
        ],
        "slow_tasks": [
            {
                "namespace_name": t.namespace_name,
                "task_name": t.task_name,
                "version": t.version,
                "average_duration_seconds": t.average_duration_seconds,
                "max_duration_seconds": t.max_duration_seconds,
                "execution_count": t.execution_count,
                "error_count": t.error_count,
                "error_rate": t.error_rate,
                "average_step_count": t.average_step_count,
                "last_executed_at": format_ts(t.last_executed_at),
            }
            for t in analysis.slow_tasks
        ],
        "resource_utilization": {
            "database_pool_utilization": analysis.resource_utilization.database_pool_utilization,
            "system_health": analysis.resource_utilization.system_health,
        },
        "recommendations": list(analysis.recommendations),
    }


def template_list_view(templates: list[TaskTemplate]) -> JSONObject:
    """``TemplateListResponse`` of the given templates, with per-namespace counts."""
    counts: dict[str, int] = {}
    for template in templates:
        counts[template.namespace_name] = counts.get(template.namespace_name, 0) + 1
    return {
        "namespaces": [
            {"name": ns, "description": None, "template_count": n}
            for ns, n in sorted(counts.items())
        ],
        "templates": [
            {
                "name": t.name,
                "namespace": t.namespace_name,
                "version": t.version,
                "description": t.description,
                "step_count": len(t.steps),
            }
            for t in templates
        ],
        "total_count": len(templates),
    }


def template_detail_view(template: TaskTemplate, configuration: Mapping[str, Any]) -> JSONObject:
    """``TemplateDetail``: the stored configuration and each step's defaults."""
    return {
        "name": template.name,
        "namespace": template.namespace_name,
        "version": template.version,
        "description": template.description,
        "configuration": dict(configuration),
        "steps": [
            {
                "name": step.name,
                "description": step.description,
                "default_retryable": step.retry.retryable,
                "default_max_attempts": step.retry.max_attempts,
                "result_schema": dict(step.result_schema) if step.result_schema else None,
            }
            for step in template.steps
        ],
    }
