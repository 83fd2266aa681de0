"""The pure parts of the analytics read model: health score, its label, recommendations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tasker.orchestration.analytics import (
    PerformanceMetrics,
    ResourceUtilization,
    SlowStep,
    SlowTask,
    health_label,
    health_score,
    performance_metrics,
    recommendations,
)

NOW = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)


def test_an_idle_system_scores_full_health() -> None:
    assert health_score(completed=0, failed=0, step_executions=0, failed_step_executions=0) == 1.0


def test_the_score_weighs_task_failures_then_step_failures() -> None:
    assert health_score(
        completed=3, failed=1, step_executions=10, failed_step_executions=5
    ) == pytest.approx(0.7 * 0.75 + 0.3 * 0.5)
    assert health_score(completed=0, failed=4, step_executions=4, failed_step_executions=4) == 0.0


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (1.0, "healthy"),
        (0.9, "healthy"),
        (0.89, "degraded"),
        (0.6, "degraded"),
        (0.59, "unhealthy"),
    ],
)
def test_labels(score: float, label: str) -> None:
    assert health_label(score) == label


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="hours must be > 0"):
        performance_metrics(None, NOW, 0)  # type: ignore[arg-type]  # refused before any read


def _step(**overrides: Any) -> SlowStep:
    values: dict[str, Any] = {
        "namespace_name": "shop",
        "task_name": "order",
        "version": "1.0.0",
        "step_name": "charge",
        "average_duration_seconds": 1.0,
        "max_duration_seconds": 2.0,
        "execution_count": 10,
        "error_count": 0,
        "error_rate": 0.0,
        "last_executed_at": NOW,
    }
    values.update(overrides)
    return SlowStep(**values)


def _task(**overrides: Any) -> SlowTask:
    values: dict[str, Any] = {
        "namespace_name": "shop",
        "task_name": "order",
        "version": "1.0.0",
        "average_duration_seconds": 5.0,
        "max_duration_seconds": 9.0,
        "execution_count": 10,
        "error_count": 0,
        "error_rate": 0.0,
        "average_step_count": 3.0,
        "last_executed_at": NOW,
    }
    values.update(overrides)
    return SlowTask(**values)


def _recent(score: float = 1.0, failed: int = 0, total: int = 10) -> PerformanceMetrics:
    return PerformanceMetrics(
        total_tasks=total,
        active_tasks=0,
        completed_tasks=total - failed,
        failed_tasks=failed,
        completion_rate=0.0,
        error_rate=0.0,
        average_task_duration_seconds=0.0,
        average_step_duration_seconds=0.0,
        tasks_per_hour=0.0,
        steps_per_hour=0.0,
        system_health_score=score,
        analysis_period_start=NOW,
        calculated_at=NOW,
    )


def test_nothing_to_recommend_when_all_is_well() -> None:
    quiet = ResourceUtilization(database_pool_utilization=0.1, system_health="healthy")
    assert recommendations((_step(),), (_task(),), quiet, _recent()) == ()


def test_each_rule_adds_its_line() -> None:
    steps = (_step(average_duration_seconds=45.0, error_count=3, error_rate=0.3),)
    tasks = (_task(error_count=2, error_rate=0.2),)
    busy = ResourceUtilization(database_pool_utilization=0.85, system_health="unhealthy")
    lines = recommendations(steps, tasks, busy, _recent(score=0.5, failed=5))
    assert lines == (
        "Step 'charge' of shop/order@1.0.0 failed 3 of 10 executions (30%): check its handler"
        " and its retry settings.",
        "shop/order@1.0.0 ended in error 2 of 10 times (20%): the DLQ (GET /v1/dlq) holds the"
        " ones waiting for an operator.",
        "Step 'charge' of shop/order@1.0.0 averages 45.0 s per execution: consider a timeout,"
        " a checkpoint or splitting it into batches.",
        "The database pool is 85% in use: raise db_pool_size or lower the worker concurrency.",
        "System health is unhealthy (score 0.50 over the last 24 h): 5 of 10 recent tasks failed.",
    )
