"""StepContext: field mapping from the engine's dict and every accessor of python-api.md §2.2."""

from __future__ import annotations

import inspect
import uuid
from typing import Any
from uuid import UUID

import pytest

from tasker.worker.context import FfiStepEvent, StepContext
from tasker.worker.models import TaskSequenceStepWrapper

TASK_UUID = "0199a46a-11a8-7d53-83da-0b13513dab49"
STEP_UUID = "0199a46a-11a8-7d53-83da-0b13513dab50"
CORRELATION_ID = "0199a46a-11a8-7d53-83da-0b13513dab51"


def make_tss(
    *,
    context: Any = None,
    attempts: Any = 0,
    max_attempts: Any = 3,
    inputs: Any = None,
    checkpoint: Any = None,
    dependency_results: dict[str, Any] | None = None,
    initialization: Any = None,
    correlation_id: str | None = CORRELATION_ID,
) -> dict[str, Any]:
    return {
        "task": {
            "task": {
                "task_uuid": TASK_UUID,
                "context": context,
                "correlation_id": correlation_id,
                "parent_correlation_id": None,
            },
            "task_name": "process_order",
            "task_version": "1.0.0",
            "namespace_name": "orders",
        },
        "workflow_step": {
            "workflow_step_uuid": STEP_UUID,
            "task_uuid": TASK_UUID,
            "name": "charge",
            "attempts": attempts,
            "max_attempts": max_attempts,
            "retryable": True,
            "inputs": inputs,
            "results": None,
            "checkpoint": checkpoint,
        },
        "dependency_results": dependency_results or {},
        "step_definition": {
            "name": "charge",
            "handler": {
                "callable": "orders.Charge",
                "method": "capture",
                "resolver": None,
                "initialization": initialization,
            },
            "dependencies": ["validate"],
            "timeout_seconds": 12,
        },
    }


def make_ctx(**kwargs: Any) -> StepContext:
    return StepContext.from_task_sequence_step(make_tss(**kwargs), "charge_handler")


def envelope(result: Any) -> dict[str, Any]:
    return {
        "step_uuid": str(uuid.uuid4()),
        "success": True,
        "status": "completed",
        "result": result,
        "metadata": {},
        "error": None,
    }


# -- construction ----------------------------------------------------------------------------


def test_from_task_sequence_step_maps_every_field() -> None:
    deps = {"validate": envelope({"ok": True})}
    tss = make_tss(
        context={"order": 7},
        attempts=2,
        max_attempts=5,
        inputs={"cursor": {"batch_id": "001"}},
        dependency_results=deps,
        initialization={"api_url": "https://pay"},
    )
    ctx = StepContext.from_task_sequence_step(tss, "charge_handler", event_id="evt-1")

    assert ctx.task_uuid == UUID(TASK_UUID)
    assert isinstance(ctx.task_uuid, UUID)
    assert ctx.step_uuid == UUID(STEP_UUID)
    assert ctx.correlation_id == UUID(CORRELATION_ID)
    assert ctx.handler_name == "charge_handler"
    assert ctx.input_data == {"order": 7}
    assert ctx.step_config == {"api_url": "https://pay"}
    assert ctx.step_inputs == {"cursor": {"batch_id": "001"}}
    assert ctx.dependency_results == deps
    assert ctx.retry_count == 2
    assert ctx.max_retries == 5
    assert ctx.event.event_id == "evt-1"
    assert ctx.event.task_correlation_id == CORRELATION_ID
    assert ctx.event.task_sequence_step == tss


def test_from_task_sequence_step_defaults_nulls() -> None:
    ctx = make_ctx(context=None, attempts=None, max_attempts=None, inputs=None, initialization=None)

    assert ctx.input_data == {}
    assert ctx.step_inputs == {}
    assert ctx.step_config == {}
    assert ctx.retry_count == 0
    assert ctx.max_retries == 3


def test_missing_correlation_id_falls_back_to_task_uuid_and_event_id_is_generated() -> None:
    first = make_ctx(correlation_id=None)
    second = make_ctx(correlation_id=None)

    assert first.correlation_id == UUID(TASK_UUID)
    assert first.event.event_id != second.event.event_id


def test_from_ffi_event_reads_the_task_sequence_step() -> None:
    event = FfiStepEvent(
        event_id="e",
        task_uuid=TASK_UUID,
        step_uuid=STEP_UUID,
        correlation_id=CORRELATION_ID,
        task_sequence_step=make_tss(context={"a": 1}, attempts=1),
    )
    ctx = StepContext.from_ffi_event(event, "h")

    assert ctx.event is event
    assert (ctx.input_data, ctx.retry_count, ctx.handler_name) == ({"a": 1}, 1, "h")


def test_direct_construction_defaults_and_builds_a_matching_event() -> None:
    ctx = StepContext(
        task_uuid=uuid.UUID(TASK_UUID),
        step_uuid=uuid.UUID(STEP_UUID),
        handler_name="h",
        input_data={"k": "v"},
        step_config={"c": 1},
    )

    assert (ctx.retry_count, ctx.max_retries) == (0, 3)
    assert ctx.dependency_results == {}
    assert ctx.step_inputs == {}
    assert ctx.correlation_id == UUID(TASK_UUID)
    assert ctx.event.step_uuid == STEP_UUID
    assert ctx.task_sequence_step.get_task_field("k") == "v"
    assert ctx.task_sequence_step.step_definition.handler.initialization == {"c": 1}
    assert ctx.checkpoint is None


def test_direct_construction_accepts_uuid_strings() -> None:
    ctx = StepContext(task_uuid=TASK_UUID, step_uuid=STEP_UUID, handler_name="h")  # type: ignore[arg-type]  # pydantic coerces

    assert ctx.step_uuid == UUID(STEP_UUID)


# -- inputs and config -----------------------------------------------------------------------


def test_get_input_returns_value_or_none() -> None:
    ctx = make_ctx(context={"order_id": "A1", "nested": {"x": 1}})

    assert ctx.get_input("order_id") == "A1"
    assert ctx.get_input("nested") == {"x": 1}
    assert ctx.get_input("absent") is None


@pytest.mark.parametrize("falsy", [0, "", False, [], {}])
def test_get_input_or_returns_falsy_values(falsy: Any) -> None:
    ctx = make_ctx(context={"k": falsy})

    assert ctx.get_input_or("k", "default") == falsy
    assert ctx.get_input_or("k", "default") is not "default"  # noqa: F632 - identity is the point


def test_get_input_or_uses_default_when_absent_or_none() -> None:
    ctx = make_ctx(context={"none": None})

    assert ctx.get_input_or("none", 100) == 100
    assert ctx.get_input_or("absent", 100) == 100
    assert ctx.get_input_or("absent") is None


def test_get_config() -> None:
    ctx = make_ctx(initialization={"api_url": "https://x", "zero": 0})

    assert ctx.get_config("api_url") == "https://x"
    assert ctx.get_config("zero") == 0
    assert ctx.get_config("absent") is None


# -- dependency results ----------------------------------------------------------------------


def test_dependency_result_is_unwrapped_one_level_and_raw_envelope_stays() -> None:
    deps = {
        "validate": envelope({"ok": True}),
        "double": {"result": {"result": 5}},
        "no_result_key": {"value": 3},
        "primitive": 42,
        "null_result": {"result": None},
    }
    ctx = make_ctx(dependency_results=deps)

    assert ctx.get_dependency_result("validate") == {"ok": True}
    assert ctx.dependency_results["validate"]["result"] == {"ok": True}
    assert ctx.get_dependency_result("double") == {"result": 5}
    assert ctx.get_dependency_result("no_result_key") == {"value": 3}
    assert ctx.get_dependency_result("primitive") == 42
    assert ctx.get_dependency_result("null_result") is None
    assert ctx.get_dependency_result("absent") is None


def test_get_dependency_field_descends_dicts_only() -> None:
    deps = {
        "process": envelope({"stats": {"count": 12, "items": [1, 2]}, "label": "x"}),
    }
    ctx = make_ctx(dependency_results=deps)

    assert ctx.get_dependency_field("process", "stats", "count") == 12
    assert ctx.get_dependency_field("process") == {
        "stats": {"count": 12, "items": [1, 2]},
        "label": "x",
    }
    assert ctx.get_dependency_field("process", "stats", "missing") is None
    assert ctx.get_dependency_field("process", "label", "deeper") is None
    assert ctx.get_dependency_field("process", "stats", "items", "0") is None
    assert ctx.get_dependency_field("absent", "stats") is None


def test_dependency_keys_and_prefix_collection() -> None:
    deps = {
        "analyze": envelope({"n": 3}),
        "worker_001": envelope({"processed": 10}),
        "worker_002": envelope(None),
        "worker_003": envelope({"processed": 5}),
        "other_worker_004": envelope({"processed": 99}),
    }
    ctx = make_ctx(dependency_results=deps)

    assert ctx.get_dependency_result_keys() == list(deps)
    assert ctx.get_all_dependency_results("worker_") == [{"processed": 10}, {"processed": 5}]
    assert ctx.get_all_dependency_results("nothing") == []


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "is_retry", "is_last"),
    [
        (0, 3, False, False),
        (1, 3, True, False),
        (2, 3, True, True),
        (0, 1, False, True),
        (5, 3, True, True),
    ],
)
def test_retry_helpers(attempts: int, max_attempts: int, is_retry: bool, is_last: bool) -> None:
    ctx = make_ctx(attempts=attempts, max_attempts=max_attempts)

    assert ctx.retry_count == attempts
    assert ctx.is_retry() is is_retry
    assert ctx.is_last_retry() is is_last


# -- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_accessors_with_a_checkpoint() -> None:
    checkpoint = {
        "cursor": 500,
        "items_processed": 500,
        "accumulated_results": {"total": 12.5},
        "timestamp": "2026-01-01T00:00:00Z",
    }
    ctx = make_ctx(checkpoint=checkpoint)

    assert ctx.checkpoint == checkpoint
    assert ctx.checkpoint_cursor == 500
    assert ctx.checkpoint_items_processed == 500
    assert ctx.accumulated_results == {"total": 12.5}
    assert ctx.has_checkpoint() is True
    assert (ctx.checkpoint_cursor or 0) == 500


def test_checkpoint_cursor_zero_still_counts_as_a_checkpoint() -> None:
    ctx = make_ctx(checkpoint={"cursor": 0})

    assert ctx.checkpoint_cursor == 0
    assert ctx.has_checkpoint() is True
    assert ctx.checkpoint_items_processed == 0
    assert ctx.accumulated_results is None


@pytest.mark.parametrize("checkpoint", [None, "not-a-dict", [1, 2], {"items_processed": 4}])
def test_checkpoint_accessors_without_a_usable_checkpoint(checkpoint: Any) -> None:
    ctx = make_ctx(checkpoint=checkpoint)

    assert (ctx.checkpoint_cursor or 0) == 0
    assert ctx.checkpoint_cursor is None
    assert ctx.has_checkpoint() is False
    if isinstance(checkpoint, dict):
        assert ctx.checkpoint == checkpoint
        assert ctx.checkpoint_items_processed == 4
    else:
        assert ctx.checkpoint is None
        assert ctx.checkpoint_items_processed == 0


@pytest.mark.parametrize(
    "name",
    ["checkpoint", "checkpoint_cursor", "checkpoint_items_processed", "accumulated_results"],
)
def test_checkpoint_values_are_properties(name: str) -> None:
    assert isinstance(inspect.getattr_static(StepContext, name), property)


@pytest.mark.parametrize(
    "name",
    [
        "has_checkpoint",
        "is_retry",
        "is_last_retry",
        "get_input",
        "get_input_or",
        "get_config",
        "get_dependency_result",
        "get_dependency_field",
        "get_dependency_result_keys",
        "get_all_dependency_results",
    ],
)
def test_accessors_are_methods(name: str) -> None:
    assert inspect.isfunction(inspect.getattr_static(StepContext, name))


def test_retry_count_and_max_retries_are_plain_fields() -> None:
    assert {"retry_count", "max_retries", "input_data", "step_config"} <= set(
        StepContext.model_fields
    )


# -- task_sequence_step wrapper --------------------------------------------------------------


def test_task_sequence_step_gives_attribute_access() -> None:
    deps = {"validate": envelope({"ok": True})}
    ctx = make_ctx(
        context={"even_number": 2}, dependency_results=deps, initialization={"x": 1}, attempts=1
    )
    tss = ctx.task_sequence_step

    assert isinstance(tss, TaskSequenceStepWrapper)
    assert tss.task.task_uuid == TASK_UUID
    assert tss.task.namespace_name == "orders"
    assert tss.task.task_name == "process_order"
    assert tss.task.correlation_id == CORRELATION_ID
    assert tss.get_task_field("even_number") == 2
    assert tss.workflow_step.name == "charge"
    assert tss.workflow_step.attempts == 1
    assert tss.step_definition.handler.callable == "orders.Charge"
    assert tss.step_definition.handler.handler_method == "capture"
    assert tss.step_definition.handler.initialization == {"x": 1}
    assert tss.step_definition.timeout_seconds == 12
    assert tss.step_definition.dependencies == ["validate"]
    assert tss.get_dependency_result("validate") == {"ok": True}
    assert tss.get_results("validate") == {"ok": True}
    assert tss.dependency_results.get_result("validate") == deps["validate"]
    assert tss.dependency_results["validate"] == deps["validate"]
    assert "validate" in tss.dependency_results
    assert list(tss.dependency_results) == ["validate"]


def test_seed_python_example_runs_against_a_context() -> None:
    deps = {"validate": envelope({"valid": True}), "process": envelope({"stats": {"count": 3}})}
    ctx = make_ctx(
        context={"order_id": "O-1"},
        initialization={"api_url": "https://api"},
        dependency_results=deps,
        attempts=1,
        checkpoint={"cursor": 40, "items_processed": 40},
    )

    assert ctx.get_input("order_id") == "O-1"
    assert ctx.get_input_or("batch_size", 100) == 100
    assert ctx.get_config("api_url") == "https://api"
    assert ctx.get_dependency_result("validate") == {"valid": True}
    assert ctx.get_dependency_field("process", "stats", "count") == 3
    assert ctx.is_retry()
    assert f"Retry attempt {ctx.retry_count}" == "Retry attempt 1"
    assert (ctx.checkpoint_cursor or 0) == 40
