"""Pure parts of the DLQ, staleness and read-model code: labels, thresholds, JSON shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasker.domain.states import StepState, TaskState
from tasker.domain.template import Lifecycle
from tasker.errors import ConfigError
from tasker.orchestration.dlq import StalenessThresholds, health_label
from tasker.orchestration.operator import manual_completion_document
from tasker.orchestration.queries import (
    MAX_PAGE_SIZE,
    StepAuditRecord,
    clamp_page,
    health_status,
    to_json,
)

AT = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("minutes", "label"),
    [(0.0, "healthy"), (7.99, "healthy"), (8.0, "warning"), (9.99, "warning"), (10.0, "stale")],
)
def test_health_label_switches_at_80_and_100_percent(minutes: float, label: str) -> None:
    assert health_label(minutes, 10.0) == label


def test_thresholds_prefer_the_template_lifecycle_per_state() -> None:
    defaults = StalenessThresholds()
    lifecycle = Lifecycle(max_waiting_for_retry_minutes=7)
    assert defaults.for_state(TaskState.WAITING_FOR_RETRY, lifecycle) == 7.0
    assert defaults.for_state(TaskState.WAITING_FOR_DEPENDENCIES, lifecycle) == 60.0
    assert defaults.for_state(TaskState.STEPS_IN_PROCESS, None) == 30.0
    assert defaults.for_state(TaskState.EVALUATING_RESULTS, lifecycle) == 1440.0


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_a_threshold_must_be_positive(value: float) -> None:
    with pytest.raises(ConfigError, match="waiting_for_retry_minutes must be > 0"):
        StalenessThresholds(waiting_for_retry_minutes=value)


@pytest.mark.parametrize(
    ("asked", "got"), [((50, 0), (50, 0)), ((0, -3), (1, 0)), ((1000, 7), (MAX_PAGE_SIZE, 7))]
)
def test_pages_are_clamped(asked: tuple[int, int], got: tuple[int, int]) -> None:
    assert clamp_page(*asked) == got


def test_to_json_turns_datetimes_enums_and_tuples_into_json_types() -> None:
    value = {"at": AT, "state": StepState.ERROR, "items": (1, (2, 3))}
    assert to_json(value) == {
        "at": "2026-01-06T12:00:00+00:00",
        "state": "error",
        "items": [1, [2, 3]],
    }


def test_health_status_ranks_failures_over_retries() -> None:
    assert health_status({"error_steps": 1, "retrying_steps": 1}) == "blocked"
    assert health_status({"error_steps": 0, "retrying_steps": 2}) == "recovering"
    assert health_status({"error_steps": 0, "retrying_steps": 0}) == "healthy"


def test_manual_completion_document_wraps_non_object_metadata() -> None:
    document = manual_completion_document(
        "s-1", {"v": 1}, "see ticket", completed_by="ops", reason="why"
    )
    assert document["success"] is True
    assert document["status"] == "completed"
    assert document["result"] == {"v": 1}
    assert document["error"] is None
    assert document["metadata"]["custom"] == {"operator_metadata": "see ticket"}
    assert document["metadata"]["completion_reason"] == "why"
    empty = manual_completion_document("s-1", None, None, completed_by="ops", reason="why")
    assert empty["metadata"]["custom"] == {}


def test_audit_record_leaves_out_optional_nulls_but_keeps_required_fields() -> None:
    record = StepAuditRecord(
        audit_uuid="a",
        workflow_step_uuid="s",
        transition_uuid="t",
        task_uuid="k",
        recorded_at=AT,
        worker_uuid=None,
        correlation_id=None,
        success=False,
        execution_time_ms=None,
        attempt=1,
        step_name="n",
        from_state=None,
        to_state="enqueued_as_error_for_orchestration",
    )
    data = record.to_dict()
    assert "worker_uuid" not in data
    assert "result" not in data
    assert data["success"] is False
    assert data["recorded_at"] == "2026-01-06T12:00:00+00:00"
