"""Each REST operation as a plain function of a ``Tasker``: no HTTP, no web framework.

The routes call these after checking the request; the operator CLI calls the same functions in
direct mode (``--database-url``), so both print the same documents (rest-api.md §4 shapes) and
refuse the same things with the same ``TaskerError``s.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from tasker.api import views
from tasker.domain.model import JSON, TaskRequest
from tasker.domain.template import TaskTemplate, resolve_environment, template_from_dict
from tasker.errors import NotFound, TaskerError, TemplateNotFound
from tasker.orchestration import analytics, dlq, operator, queries
from tasker.runtime import Tasker
from tasker.worker.resolvers import HandlerDefinition

__all__ = [
    "STEP_ACTIONS",
    "act_on_step",
    "bottlenecks",
    "cancel_task",
    "create_task",
    "create_tasks",
    "dlq_entry_for_task",
    "dlq_stats",
    "find_template",
    "get_step",
    "get_task",
    "get_template",
    "investigation_queue",
    "list_dlq",
    "list_steps",
    "list_tasks",
    "list_templates",
    "performance_metrics",
    "registered_templates",
    "staleness",
    "step_audit",
    "task_summary",
    "update_dlq_entry",
    "validate_template",
]

JSONObject = dict[str, Any]
STEP_ACTIONS = ("reset_for_retry", "resolve_manually", "complete_manually")


def _now() -> datetime:
    return datetime.now(UTC)


# -- tasks --------------------------------------------------------------------------------------


def create_task(app: Tasker, request: TaskRequest) -> JSONObject:
    """Create a task and answer it as ``GET`` would (its first steps already exist).

    Raises:
        TemplateNotFound, InvalidContext, DuplicateTask: from the engine; nothing was written.
    """
    return get_task(app, app.submit(request))


def create_tasks(app: Tasker, requests: list[TaskRequest]) -> list[JSONObject]:
    """Create every task in one transaction (all or none) and answer them in order.

    Raises:
        TemplateNotFound, InvalidContext, DuplicateTask: from the engine, naming the request
            (``request 2: ...``); nothing was written.
    """
    created = app.submit_many(requests)
    with app.store.read() as tx:
        return [views.task_view(queries.task_detail(tx, task_uuid)) for task_uuid in created]


def get_task(app: Tasker, task_uuid: str) -> JSONObject:
    """``TaskResponse``. Raises ``TaskNotFound``."""
    with app.store.read() as tx:
        return views.task_view(queries.task_detail(tx, task_uuid))


def list_tasks(
    app: Tasker,
    *,
    page: int = 1,
    per_page: int = 25,
    namespace: str | None = None,
    status: str | None = None,
    initiator: str | None = None,
    source_system: str | None = None,
) -> JSONObject:
    """``TaskListResponse``: one page, newest first (page >= 1, per_page 1..100)."""
    with app.store.read() as tx:
        tasks, total = queries.list_tasks(
            tx,
            namespace=namespace,
            status=status,
            initiator=initiator,
            source_system=source_system,
            limit=per_page,
            offset=(page - 1) * per_page,
            include_steps=True,
        )
    total_pages = math.ceil(total / per_page) if total else 0
    return {
        "tasks": [views.task_view(task) for task in tasks],
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total_count": total,
            "total_pages": total_pages,
            "has_next": page < total_pages,
            "has_previous": page > 1,
        },
    }


def cancel_task(app: Tasker, task_uuid: str) -> JSONObject:
    """Cancel, then answer the task. Raises ``TaskNotFound``, ``IllegalTransition`` (finished)."""
    app.cancel_task(task_uuid)
    return get_task(app, task_uuid)


def task_summary(app: Tasker, task_uuid: str) -> JSONObject:
    """``TaskSummaryResponse``. Raises ``TaskNotFound``."""
    with app.store.read() as tx:
        task = queries.task_detail(tx, task_uuid)
        entry = dlq.dlq_entry_for_task(tx, task_uuid)
        template: TaskTemplate | None
        try:
            _, template = app.templates.by_key(tx, task.namespace, task.name, task.version)
        except TemplateNotFound:
            template = None
    return views.task_summary_view(task, template, entry)


# -- steps --------------------------------------------------------------------------------------


def list_steps(app: Tasker, task_uuid: str) -> list[JSONObject]:
    """``[StepResponse]``, oldest first; ``[]`` for an unknown task."""
    with app.store.read() as tx:
        return [views.step_view(s) for s in queries.list_task_steps(tx, task_uuid)]


def get_step(app: Tasker, task_uuid: str, step_uuid: str) -> JSONObject:
    """``StepResponse``. Raises ``StepNotFound`` (also for a step of another task)."""
    with app.store.read() as tx:
        return views.step_view(queries.step_detail(tx, task_uuid, step_uuid))


def step_audit(app: Tasker, task_uuid: str, step_uuid: str) -> list[JSONObject]:
    """``[StepAuditResponse]``, oldest first. Raises ``StepNotFound``."""
    with app.store.read() as tx:
        return [views.audit_view(r) for r in queries.step_audit_history(tx, task_uuid, step_uuid)]


def act_on_step(
    app: Tasker,
    task_uuid: str,
    step_uuid: str,
    action: str,
    *,
    reason: str,
    by: str,
    result: JSON = None,
    metadata: JSON = None,
) -> JSONObject:
    """Apply an operator action (rest-api.md §3.3), then answer the step.

    Raises:
        TaskNotFound, StepNotFound: unknown task or step.
        IllegalTransition: the step's state does not allow the action; nothing was written.
        ValueError: ``action`` is not one of ``STEP_ACTIONS``.
    """
    now = _now()
    with app.store.transaction() as tx:
        if action == "reset_for_retry":
            operator.reset_step_for_retry(tx, task_uuid, step_uuid, now, reset_by=by, reason=reason)
        elif action == "resolve_manually":
            operator.resolve_step_manually(
                tx, task_uuid, step_uuid, now, resolved_by=by, reason=reason
            )
        elif action == "complete_manually":
            operator.complete_step_manually(
                tx,
                task_uuid,
                step_uuid,
                now,
                result=result,
                metadata=metadata,
                completed_by=by,
                reason=reason,
                templates=app.templates,
            )
        else:
            raise ValueError(f"unknown step action {action!r}: use {', '.join(STEP_ACTIONS)}")
    return get_step(app, task_uuid, step_uuid)


# -- DLQ ----------------------------------------------------------------------------------------


def list_dlq(
    app: Tasker, *, resolution_status: str | None = None, limit: int = 50, offset: int = 0
) -> list[JSONObject]:
    """``[DlqEntry]``, newest first."""
    with app.store.read() as tx:
        entries = dlq.list_dlq_entries(
            tx, resolution_status=resolution_status, limit=limit, offset=offset
        )
    return [views.dlq_entry_view(e) for e in entries]


def dlq_entry_for_task(app: Tasker, task_uuid: str) -> JSONObject:
    """The task's latest ``DlqEntry``. Raises ``NotFound``."""
    with app.store.read() as tx:
        entry = dlq.dlq_entry_for_task(tx, task_uuid)
    if entry is None:
        raise NotFound(f"DLQ entry not found for task {task_uuid}")
    return views.dlq_entry_view(entry)


def update_dlq_entry(
    app: Tasker,
    dlq_entry_uuid: str,
    *,
    resolution_status: str | None = None,
    resolution_notes: str | None = None,
    resolved_by: str | None = None,
    metadata: JSONObject | None = None,
) -> JSONObject:
    """Record an investigation's outcome; answers ``{success, message, dlq_entry_uuid}``.

    Raises:
        NotFound: no such entry.
        IllegalTransition: unknown status, or reopening while another entry is pending.
    """
    with app.store.transaction() as tx:
        dlq.update_dlq_entry(
            tx,
            dlq_entry_uuid,
            resolution_status=resolution_status,
            resolution_notes=resolution_notes,
            resolved_by=resolved_by,
            metadata=metadata,
            now=_now(),
        )
    return {
        "success": True,
        "message": "Investigation status updated successfully",
        "dlq_entry_uuid": dlq_entry_uuid,
    }


def dlq_stats(app: Tasker) -> list[JSONObject]:
    """``[DlqStats]``, one per reason."""
    with app.store.read() as tx:
        return [views.dlq_stats_view(r) for r in dlq.dlq_stats(tx)]


def investigation_queue(app: Tasker, limit: int = 50) -> list[JSONObject]:
    """``[DlqInvestigationQueueEntry]``, highest priority first."""
    with app.store.read() as tx:
        return [views.investigation_view(r) for r in dlq.investigation_queue(tx, _now(), limit)]


def staleness(app: Tasker, limit: int = 50) -> list[JSONObject]:
    """``[StalenessMonitoring]``, the most overdue first."""
    with app.store.read() as tx:
        return [views.staleness_view(r) for r in dlq.staleness_report(tx, _now(), limit)]


# -- analytics ----------------------------------------------------------------------------------


def performance_metrics(app: Tasker, hours: float = 24.0) -> JSONObject:
    """``PerformanceMetrics`` of the tasks created in the last ``hours`` (> 0)."""
    with app.store.read() as tx:
        return views.performance_view(analytics.performance_metrics(tx, _now(), hours))


def bottlenecks(app: Tasker, *, limit: int = 10, min_executions: int = 5) -> JSONObject:
    """``BottleneckAnalysis``: the slowest steps and tasks with at least ``min_executions``."""
    utilization = _pool_utilization(app)  # before the read below borrows a connection
    with app.store.read() as tx:
        analysis = analytics.bottleneck_analysis(
            tx,
            _now(),
            limit=limit,
            min_executions=min_executions,
            pool_utilization=utilization,
        )
    return views.bottleneck_view(analysis)


def _pool_utilization(app: Tasker) -> float:
    """The share of the store's connection pool in use; 0.0 for a store without a pool."""
    measure = getattr(app.store, "pool_utilization", None)
    return float(measure()) if callable(measure) else 0.0


# -- templates ----------------------------------------------------------------------------------


def registered_templates(app: Tasker) -> list[tuple[TaskTemplate, JSONObject]]:
    """Every registered template (resolved for this environment) with its stored form."""
    with app.store.read() as tx:
        rows = tx.list_named_tasks()
    env = app.templates.environment
    found = [(resolve_environment(template_from_dict(cfg), env), cfg) for _, cfg in rows]
    return sorted(found, key=lambda pair: pair[0].key)


def find_template(
    app: Tasker, namespace: str, name: str, version: str
) -> tuple[TaskTemplate, JSONObject]:
    """One registered template.

    Raises:
        TemplateNotFound: "Namespace not found: x" or "Template not found: ns/name/ver".
    """
    everything = registered_templates(app)
    for template, configuration in everything:
        if template.key == (namespace, name, version):
            return template, configuration
    if not any(t.namespace_name == namespace for t, _ in everything):
        raise TemplateNotFound(f"Namespace not found: {namespace}")
    raise TemplateNotFound(f"Template not found: {namespace}/{name}/{version}")


def list_templates(app: Tasker, namespace: str | None = None) -> JSONObject:
    """``TemplateListResponse``, optionally of one namespace."""
    chosen = [
        t
        for t, _ in registered_templates(app)
        if namespace is None or t.namespace_name == namespace
    ]
    return views.template_list_view(chosen)


def get_template(app: Tasker, namespace: str, name: str, version: str) -> JSONObject:
    """``TemplateDetail``. Raises ``TemplateNotFound``."""
    return views.template_detail_view(*find_template(app, namespace, name, version))


def validate_template(app: Tasker, namespace: str, name: str, version: str) -> JSONObject:
    """Whether this process has a handler for every step (worker API, rest-api.md §5)."""
    template, _ = find_template(app, namespace, name, version)
    errors: list[str] = []
    for step in template.steps:
        definition = HandlerDefinition(
            callable=step.handler.callable,
            handler_method=step.handler.method,
            resolver=step.handler.resolver,
            initialization=dict(step.handler.initialization),
        )
        try:
            handler = app.registry.resolve(definition)
        except TaskerError as exc:
            errors.append(f"step {step.name!r}: handler {step.handler.callable!r}: {exc}")
            continue
        if handler is None:
            errors.append(
                f"step {step.name!r}: no handler for {step.handler.callable!r} in this process"
            )
    return {
        "valid": not errors,
        "errors": errors,
        "required_capabilities": sorted({step.type.value for step in template.steps}),
        "step_handlers": sorted({step.handler.callable for step in template.steps}),
    }
