"""Analytics read models: performance over a window, and bottlenecks (rest-api.md §3, §4).

Nothing here writes, and no row is loaded one by one: the store aggregates in SQL (the
``analytics_*`` queries of each backend's ``queries_operations.sql``) and this module turns
those totals into rates, a health score and recommendations. The definitions:

Window
    ``performance_metrics`` counts the tasks *created* in ``[now - hours, now]``, and the
    worker results of their steps whenever those were recorded. ``bottleneck_analysis`` has
    no window (the API gives it none): it reads all stored history.

Task outcome
    *completed*: state ``complete``. *failed*: ``error`` or ``blocked_by_failures``.
    *active*: any other unfinished state (``pending`` through ``waiting_for_retry``).
    ``cancelled`` and ``resolved_manually`` tasks count in ``total_tasks`` only.

Task duration
    Seconds from the task's ``created_at`` to its terminal transition into ``complete`` or
    ``error`` (the ``state_entered_at`` of that final state). Only tasks in those two states
    have one: unfinished tasks have none yet, and for cancelled or manually resolved tasks
    the time measures an operator's decision, not a run.

Step execution and its duration
    One execution is one result a worker stored for a step: one row of the step result audit
    per handler run, so a step that succeeded on its third attempt ran three times. Its
    duration is the handler's run time as the worker measured and reported it
    (``execution_time_ms``), in seconds; it failed when the result is not a success.
    Operator actions store no worker result and are not executions. A result without a time
    counts as an execution but not in the averages; a run the worker abandoned at its timeout
    reports 0 s. Executions are grouped by template step name, so the workers a batch step
    creates count under their template step.

Rates
    ``completion_rate`` = completed / total and ``error_rate`` = failed / total (0.0 without
    tasks); ``tasks_per_hour`` = tasks created in the window / hours; ``steps_per_hour`` =
    executions of their steps / hours. Averages with nothing to average are 0.0.

Health score
    ``HEALTH_TASK_WEIGHT * (1 - failed / (completed + failed))
    + HEALTH_STEP_WEIGHT * (1 - failed executions / executions)``, between 0.0 and 1.0 (best);
    a share whose denominator is 0 counts as 0, so an idle system scores 1.0. Its label
    (``health_label``) is ``healthy`` from ``HEALTHY_SCORE`` up, ``degraded`` from
    ``DEGRADED_SCORE`` up, else ``unhealthy``. ``BottleneckAnalysis.resource_utilization``
    reports the label of the last ``HEALTH_WINDOW_HOURS`` hours.

Bottlenecks
    ``slow_steps``: executions grouped by (namespace, task name, version, template step), by
    average duration, slowest first. ``slow_tasks``: finished tasks (``complete`` or
    ``error``) grouped by (namespace, name, version), slowest average duration first;
    ``error_count`` is the tasks that ended in ``error``, ``average_step_count`` their mean
    number of workflow steps, ``last_executed_at`` the latest terminal transition. Groups with
    fewer than ``min_executions`` executions (tasks) are left out; at most ``limit`` of each.
    ``database_pool_utilization`` is the share of the database pool's connections lent out
    when asked (0.0..1.0; the caller measures it: SQLite has no pool and reports 0.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tasker.orchestration.queries import JsonShape, clamp_page
from tasker.store.base import Transaction

__all__ = [
    "DEGRADED_SCORE",
    "HEALTHY_SCORE",
    "HEALTH_STEP_WEIGHT",
    "HEALTH_TASK_WEIGHT",
    "HEALTH_WINDOW_HOURS",
    "HIGH_ERROR_RATE",
    "HIGH_POOL_UTILIZATION",
    "SLOW_STEP_SECONDS",
    "BottleneckAnalysis",
    "PerformanceMetrics",
    "ResourceUtilization",
    "SlowStep",
    "SlowTask",
    "bottleneck_analysis",
    "health_label",
    "health_score",
    "performance_metrics",
    "recommendations",
]

HEALTH_TASK_WEIGHT = 0.7
HEALTH_STEP_WEIGHT = 0.3
HEALTHY_SCORE = 0.9
DEGRADED_SCORE = 0.6
HEALTH_WINDOW_HOURS = 24.0
"""The window of the ``system_health`` label in a bottleneck analysis."""

HIGH_ERROR_RATE = 0.2
"""A step or task group failing at least this share of its executions gets a recommendation."""
SLOW_STEP_SECONDS = 30.0
"""The slowest step gets a recommendation when its average reaches this many seconds."""
HIGH_POOL_UTILIZATION = 0.8
"""Pool utilization from which a recommendation suggests a larger pool."""


@dataclass(frozen=True, slots=True)
class PerformanceMetrics(JsonShape):
    """Task outcomes, durations, throughput and health over a window (rest-api.md §4)."""

    total_tasks: int
    active_tasks: int
    completed_tasks: int
    failed_tasks: int
    completion_rate: float
    error_rate: float
    average_task_duration_seconds: float
    average_step_duration_seconds: float
    tasks_per_hour: float
    steps_per_hour: float
    system_health_score: float
    analysis_period_start: datetime
    calculated_at: datetime


@dataclass(frozen=True, slots=True)
class SlowStep(JsonShape):
    """The executions of one template step (rest-api.md §4 ``slow_steps[]``)."""

    namespace_name: str
    task_name: str
    version: str
    step_name: str
    average_duration_seconds: float
    max_duration_seconds: float
    execution_count: int
    error_count: int
    error_rate: float
    last_executed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SlowTask(JsonShape):
    """The finished tasks of one template (rest-api.md §4 ``slow_tasks[]``)."""

    namespace_name: str
    task_name: str
    version: str
    average_duration_seconds: float
    max_duration_seconds: float
    execution_count: int
    error_count: int
    error_rate: float
    average_step_count: float
    last_executed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResourceUtilization(JsonShape):
    """Database pool use (0..1) and the health label of the last ``HEALTH_WINDOW_HOURS``."""

    database_pool_utilization: float
    system_health: str


@dataclass(frozen=True, slots=True)
class BottleneckAnalysis(JsonShape):
    """The slowest steps and tasks, resources, and what to look at (rest-api.md §4)."""

    slow_steps: tuple[SlowStep, ...]
    slow_tasks: tuple[SlowTask, ...]
    resource_utilization: ResourceUtilization
    recommendations: tuple[str, ...]


# -- performance -------------------------------------------------------------------------------


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def health_score(
    *, completed: int, failed: int, step_executions: int, failed_step_executions: int
) -> float:
    """The health score of the module docstring: 0.0 (everything fails) to 1.0."""
    task_failures = _share(failed, completed + failed)
    step_failures = _share(failed_step_executions, step_executions)
    return HEALTH_TASK_WEIGHT * (1.0 - task_failures) + HEALTH_STEP_WEIGHT * (1.0 - step_failures)


def health_label(score: float) -> str:
    """``healthy`` from ``HEALTHY_SCORE``, ``degraded`` from ``DEGRADED_SCORE``, else
    ``unhealthy``."""
    if score >= HEALTHY_SCORE:
        return "healthy"
    if score >= DEGRADED_SCORE:
        return "degraded"
    return "unhealthy"


def performance_metrics(tx: Transaction, now: datetime, hours: float = 24.0) -> PerformanceMetrics:
    """Outcomes, durations, throughput and health of the tasks created in the last ``hours``.

    Args:
        now: the end of the window (and ``calculated_at``).
        hours: the window's length; more than 0.

    Raises:
        ValueError: ``hours`` is not positive.
    """
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    since = now - timedelta(hours=hours)
    row = tx.analytics_performance(since, now)
    total = int(row["total_tasks"] or 0)
    completed = int(row["completed_tasks"] or 0)
    failed = int(row["failed_tasks"] or 0)
    executions = int(row["step_executions"] or 0)
    return PerformanceMetrics(
        total_tasks=total,
        active_tasks=int(row["active_tasks"] or 0),
        completed_tasks=completed,
        failed_tasks=failed,
        completion_rate=_share(completed, total),
        error_rate=_share(failed, total),
        average_task_duration_seconds=_float(row["average_task_duration_seconds"]),
        average_step_duration_seconds=_float(row["average_step_duration_seconds"]),
        tasks_per_hour=total / hours,
        steps_per_hour=executions / hours,
        system_health_score=health_score(
            completed=completed,
            failed=failed,
            step_executions=executions,
            failed_step_executions=int(row["failed_step_executions"] or 0),
        ),
        analysis_period_start=since,
        calculated_at=now,
    )


def _float(value: Any) -> float:
    return 0.0 if value is None else float(value)


# -- bottlenecks -------------------------------------------------------------------------------


def bottleneck_analysis(
    tx: Transaction,
    now: datetime,
    *,
    limit: int = 10,
    min_executions: int = 5,
    pool_utilization: float = 0.0,
) -> BottleneckAnalysis:
    """The slowest template steps and templates over all history, with recommendations.

    Args:
        now: the end of the health label's window.
        limit: most entries per list, clamped to 1..100.
        min_executions: groups with fewer executions are left out (at least 1).
        pool_utilization: the database pool's share in use (0..1), measured by the caller.
    """
    limit, _ = clamp_page(limit)
    minimum = max(1, int(min_executions))
    steps = tuple(
        SlowStep(
            namespace_name=r["namespace_name"],
            task_name=r["task_name"],
            version=r["version"],
            step_name=r["step_name"],
            average_duration_seconds=_float(r["average_duration_seconds"]),
            max_duration_seconds=_float(r["max_duration_seconds"]),
            execution_count=int(r["execution_count"]),
            error_count=int(r["error_count"]),
            error_rate=_share(int(r["error_count"]), int(r["execution_count"])),
            last_executed_at=r["last_executed_at"],
        )
        for r in tx.analytics_slow_steps(limit=limit, min_executions=minimum)
    )
    tasks = tuple(
        SlowTask(
            namespace_name=r["namespace_name"],
            task_name=r["task_name"],
            version=r["version"],
            average_duration_seconds=_float(r["average_duration_seconds"]),
            max_duration_seconds=_float(r["max_duration_seconds"]),
            execution_count=int(r["execution_count"]),
            error_count=int(r["error_count"]),
            error_rate=_share(int(r["error_count"]), int(r["execution_count"])),
            average_step_count=_float(r["average_step_count"]),
            last_executed_at=r["last_executed_at"],
        )
        for r in tx.analytics_slow_tasks(limit=limit, min_executions=minimum)
    )
    recent = performance_metrics(tx, now, HEALTH_WINDOW_HOURS)
    utilization = max(0.0, min(1.0, float(pool_utilization)))
    resources = ResourceUtilization(
        database_pool_utilization=utilization,
        system_health=health_label(recent.system_health_score),
    )
    return BottleneckAnalysis(
        slow_steps=steps,
        slow_tasks=tasks,
        resource_utilization=resources,
        recommendations=recommendations(steps, tasks, resources, recent),
    )


def _template(namespace: str, name: str, version: str) -> str:
    return f"{namespace}/{name}@{version}"


def recommendations(
    steps: tuple[SlowStep, ...],
    tasks: tuple[SlowTask, ...],
    resources: ResourceUtilization,
    recent: PerformanceMetrics,
) -> tuple[str, ...]:
    """What an operator should look at, most specific first; empty when nothing stands out.

    One line per step or task group failing at least ``HIGH_ERROR_RATE`` of its executions,
    one when the slowest step averages ``SLOW_STEP_SECONDS`` or more, one when the pool is
    at least ``HIGH_POOL_UTILIZATION`` in use, and one when the recent health is not
    ``healthy``.
    """
    found: list[str] = []
    for step in steps:
        if step.error_rate >= HIGH_ERROR_RATE:
            where = _template(step.namespace_name, step.task_name, step.version)
            found.append(
                f"Step {step.step_name!r} of {where}"
                f" failed {step.error_count} of {step.execution_count} executions"
                f" ({step.error_rate:.0%}): check its handler and its retry settings."
            )
    for task in tasks:
        if task.error_rate >= HIGH_ERROR_RATE:
            found.append(
                f"{_template(task.namespace_name, task.task_name, task.version)} ended in error"
                f" {task.error_count} of {task.execution_count} times ({task.error_rate:.0%}):"
                " the DLQ (GET /v1/dlq) holds the ones waiting for an operator."
            )
    if steps and steps[0].average_duration_seconds >= SLOW_STEP_SECONDS:
        slowest = steps[0]
        where = _template(slowest.namespace_name, slowest.task_name, slowest.version)
        found.append(
            f"Step {slowest.step_name!r} of {where} averages"
            f" {slowest.average_duration_seconds:.1f} s per execution: consider a timeout,"
            " a checkpoint or splitting it into batches."
        )
    if resources.database_pool_utilization >= HIGH_POOL_UTILIZATION:
        found.append(
            f"The database pool is {resources.database_pool_utilization:.0%} in use: raise"
            " db_pool_size or lower the worker concurrency."
        )
    if resources.system_health != "healthy":
        found.append(
            f"System health is {resources.system_health} (score"
            f" {recent.system_health_score:.2f} over the last {HEALTH_WINDOW_HOURS:g} h):"
            f" {recent.failed_tasks} of {recent.total_tasks} recent tasks failed."
        )
    return tuple(found)
