"""Batchable helpers: cursor maths, analyzer/worker/aggregator result shapes, worker contexts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tasker.domain.template import FailureStrategy
from tasker.worker.batch import Batchable, BatchAggregationScenario, BatchWorkerConfig
from tasker.worker.batch_types import (
    BatchAnalyzerOutcome,
    BatchProcessingOutcome,
    BatchWorkerContext,
    CreateBatchesOutcome,
    CursorConfig,
    NoBatchesOutcome,
    RustCursorConfig,
    StepError,
    StepExecutionResult,
    aggregate_batch_results,
    create_batches,
    no_batches,
)
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult


class Worker(StepHandler, Batchable):
    """Batchable after StepHandler: the mixin must still find success/failure."""

    handler_name = "reindex_batch"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({})


class Analyzer(Batchable, StepHandler):
    """Batchable before StepHandler."""

    handler_name = "plan_reindex"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({})


def _context(
    step_inputs: dict[str, Any] | None = None,
    checkpoint: dict[str, Any] | None = None,
    step_config: dict[str, Any] | None = None,
    input_data: dict[str, Any] | None = None,
) -> StepContext:
    task_uuid, step_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    tss = {
        "task": {"task": {"task_uuid": task_uuid, "context": input_data or {}}},
        "workflow_step": {
            "workflow_step_uuid": step_uuid,
            "task_uuid": task_uuid,
            "name": "reindex_batch_002",
            "attempts": 0,
            "max_attempts": 3,
            "inputs": step_inputs or {},
            "checkpoint": checkpoint,
        },
        "dependency_results": {},
        "step_definition": {
            "name": "reindex_batch",
            "handler": {"callable": "reindex_batch", "initialization": step_config or {}},
        },
    }
    return StepContext.from_task_sequence_step(tss, "reindex_batch")


def _worker_inputs(**cursor_overrides: Any) -> dict[str, Any]:
    cursor = {"batch_id": "002", "start_cursor": 500, "end_cursor": 1000, "batch_size": 500}
    return {
        "mode": "full",
        "cursor": {**cursor, **cursor_overrides},
        "batch_metadata": {"cursor_field": "product_id", "failure_strategy": "fail_fast"},
        "is_no_op": False,
        "__template_step_name": "reindex_batch",
    }


def _envelope(result: dict[str, Any]) -> dict[str, Any]:
    return {"step_uuid": str(uuid.uuid4()), "success": True, "status": "completed",
            "result": result, "metadata": {}, "error": None}  # fmt: skip


def _bounds(configs: list[CursorConfig]) -> list[tuple[int, int]]:
    return [(c.start_cursor, c.end_cursor) for c in configs]


# -- cursor ranges -----------------------------------------------------------------------------


def test_cursor_ranges_are_contiguous_half_open_with_a_short_last_range() -> None:
    ranges = Analyzer().create_cursor_ranges(1200, 500, step_size=10)
    assert _bounds(ranges) == [(0, 500), (500, 1000), (1000, 1200)]
    assert {r.step_size for r in ranges} == {10}


def test_cursor_ranges_for_zero_items_are_empty() -> None:
    assert Analyzer().create_cursor_ranges(0, 100) == []


@pytest.mark.parametrize("batch_size", [0, -5])
def test_cursor_ranges_reject_non_positive_batch_size(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Analyzer().create_cursor_ranges(10, batch_size)


def test_max_batches_grows_the_batch_size_to_ceil_total_over_max() -> None:
    ranges = Analyzer().create_cursor_ranges(1000, 100, max_batches=3)
    assert _bounds(ranges) == [(0, 334), (334, 668), (668, 1000)]


def test_max_batches_not_exceeded_leaves_batch_size_alone() -> None:
    ranges = Analyzer().create_cursor_ranges(1000, 250, max_batches=5)
    assert _bounds(ranges) == [(0, 250), (250, 500), (500, 750), (750, 1000)]


def test_max_batches_exactly_reached_leaves_batch_size_alone() -> None:
    ranges = Analyzer().create_cursor_ranges(9, 4, max_batches=3)
    assert _bounds(ranges) == [(0, 4), (4, 8), (8, 9)]


def test_cursor_configs_split_1000_items_over_3_workers() -> None:
    configs = Analyzer().create_cursor_configs(1000, 3)
    assert [c.to_dict() for c in configs] == [
        {"batch_id": "001", "cursor_start": 0, "cursor_end": 334, "row_count": 334,
         "worker_index": 0, "total_workers": 3},
        {"batch_id": "002", "cursor_start": 334, "cursor_end": 668, "row_count": 334,
         "worker_index": 1, "total_workers": 3},
        {"batch_id": "003", "cursor_start": 668, "cursor_end": 1000, "row_count": 332,
         "worker_index": 2, "total_workers": 3},
    ]  # fmt: skip


def test_cursor_configs_leave_out_workers_without_items() -> None:
    configs = Analyzer().create_cursor_configs(2, 5)
    assert configs == [
        BatchWorkerConfig("001", 0, 1, 1, 0, 5),
        BatchWorkerConfig("002", 1, 2, 1, 1, 5),
    ]


@pytest.mark.parametrize("workers", [0, -1])
def test_cursor_configs_reject_non_positive_worker_count(workers: int) -> None:
    with pytest.raises(ValueError, match="worker_count"):
        Analyzer().create_cursor_configs(100, workers)


# -- analyzer results --------------------------------------------------------------------------


def test_batch_analyzer_success_builds_the_engine_outcome() -> None:
    handler = Analyzer()
    outcome = handler.create_batch_outcome(1200, 500, batch_metadata={"source": "catalog"})
    result = handler.batch_analyzer_success(outcome, worker_template_name="reindex_batch")
    assert result.is_success
    assert result.result == {
        "batch_processing_outcome": {
            "type": "create_batches",
            "worker_template_name": "reindex_batch",
            "worker_count": 3,
            "cursor_configs": [
                {"batch_id": "001", "start_cursor": 0, "end_cursor": 500, "batch_size": 500},
                {"batch_id": "002", "start_cursor": 500, "end_cursor": 1000, "batch_size": 500},
                {"batch_id": "003", "start_cursor": 1000, "end_cursor": 1200, "batch_size": 200},
            ],
            "total_items": 1200,
        },
        "worker_count": 3,
        "total_items": 1200,
        "batch_metadata": {"source": "catalog"},
    }
    assert result.metadata == {"batch_analyzer": True}


def test_batch_analyzer_keyword_form_wins_over_outcome_and_keeps_caller_metadata() -> None:
    handler = Worker()
    ignored = BatchAnalyzerOutcome.from_ranges([(0, 1)], total_items=1)
    caller_metadata = {"trace": "x"}
    result = handler.batch_analyzer_success(
        ignored,
        metadata=caller_metadata,
        worker_template_name="w",
        cursor_configs=handler.create_cursor_ranges(10, 5),
        total_items=10,
    )
    assert result.result is not None
    assert result.result["worker_count"] == 2
    assert "batch_metadata" not in result.result
    assert result.metadata == {"trace": "x", "batch_analyzer": True}
    assert caller_metadata == {"trace": "x"}


def test_batch_analyzer_from_uneven_ranges_sums_total_when_not_given() -> None:
    handler = Analyzer()
    outcome = handler.create_batch_outcome_from_ranges([(0, 500), (500, 800), (800, 1000)])
    result = handler.batch_analyzer_success(outcome, worker_template_name="w")
    assert result.result is not None
    sizes = [c["batch_size"] for c in result.result["batch_processing_outcome"]["cursor_configs"]]
    assert sizes == [500, 300, 200]
    assert result.result["total_items"] == 1000


def test_batch_analyzer_with_no_ranges_returns_no_batches_with_reason_from_metadata() -> None:
    handler = Analyzer()
    outcome = handler.create_batch_outcome(0, 100, batch_metadata={"reason": "nothing_new"})
    result = handler.batch_analyzer_success(outcome, worker_template_name="w")
    assert result.result == {
        "batch_processing_outcome": {"type": "no_batches"},
        "reason": "nothing_new",
    }
    assert result.metadata == {"batch_analyzer": True, "no_batches": True}


def test_batch_analyzer_empty_dataset_is_the_default_no_batches_reason() -> None:
    result = Analyzer().batch_analyzer_success(cursor_configs=[])
    assert result.result == {
        "batch_processing_outcome": {"type": "no_batches"},
        "reason": "empty_dataset",
    }


def test_batch_analyzer_without_outcome_or_configs_returns_no_batches() -> None:
    result = Analyzer().batch_analyzer_success()
    assert result.is_success
    assert result.result is not None
    assert result.result["reason"] == "no_cursor_configs_provided"
    assert result.result["batch_processing_outcome"] == {"type": "no_batches"}


def test_no_batches_outcome_merges_metadata_into_the_result_without_clobbering_type() -> None:
    result = Analyzer().no_batches_outcome(
        "below_threshold",
        metadata={"rows": 3, "batch_processing_outcome": {"type": "create_batches"}},
    )
    assert result.result == {
        "batch_processing_outcome": {"type": "no_batches"},
        "reason": "below_threshold",
        "rows": 3,
    }


def test_no_batches_outcome_metadata_may_refine_the_reason() -> None:
    result = Analyzer().no_batches_outcome("empty_dataset", metadata={"reason": "all_filtered"})
    assert result.result is not None
    assert result.result["reason"] == "all_filtered"


def test_create_batches_requires_one_cursor_per_worker() -> None:
    cursor = RustCursorConfig(batch_id="001", start_cursor="a", end_cursor="m", batch_size=0)
    with pytest.raises(ValueError, match="worker_count is 2 but 1"):
        create_batches("w", 2, [cursor], 10)
    assert (
        create_batches("w", 1, [cursor], 10).model_dump()["cursor_configs"][0]["end_cursor"] == "m"
    )


def test_batch_processing_outcome_is_discriminated_on_type() -> None:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[NoBatchesOutcome | CreateBatchesOutcome] = TypeAdapter(
        BatchProcessingOutcome
    )
    assert isinstance(adapter.validate_python({"type": "no_batches"}), NoBatchesOutcome)
    parsed = adapter.validate_python(
        {"type": "create_batches", "worker_template_name": "w", "worker_count": 0,
         "cursor_configs": [], "total_items": 0}
    )  # fmt: skip
    assert isinstance(parsed, CreateBatchesOutcome)
    assert no_batches().model_dump() == {"type": "no_batches"}


# -- worker side -------------------------------------------------------------------------------


def test_worker_inputs_parse_the_engine_shape() -> None:
    inputs = Worker().get_batch_worker_inputs(_context(_worker_inputs()))
    assert inputs is not None
    assert (inputs.cursor.batch_id, inputs.cursor.start_cursor, inputs.cursor.end_cursor) == (
        "002",
        500,
        1000,
    )
    assert inputs.batch_metadata.failure_strategy is FailureStrategy.FAIL_FAST
    assert inputs.is_no_op is False


def test_worker_inputs_are_none_for_a_non_batch_step() -> None:
    assert Worker().get_batch_worker_inputs(_context({"mode": "full"})) is None
    assert Worker().get_batch_worker_inputs(_context({})) is None


def test_no_op_placeholder_succeeds_at_once() -> None:
    inputs = _worker_inputs(batch_id="000", start_cursor=0, end_cursor=0, batch_size=0)
    inputs["is_no_op"] = True
    now = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
    result = Worker().handle_no_op_worker(_context(inputs), now=now)
    assert result is not None
    assert result.result == {
        "batch_id": "000",
        "no_op": True,
        "processed_count": 0,
        "message": "No batches to process",
        "processed_at": "2026-01-06T12:00:00+00:00",
    }


def test_real_worker_is_not_a_no_op() -> None:
    assert Worker().handle_no_op_worker(_context(_worker_inputs())) is None


def test_batch_context_from_engine_inputs_uses_batch_size_as_step_size() -> None:
    ctx = Worker().get_batch_context(_context(_worker_inputs()))
    assert ctx is not None
    assert (ctx.batch_id, ctx.start_cursor, ctx.end_cursor, ctx.step_size) == (
        "002",
        500,
        1000,
        500,
    )
    assert (ctx.batch_index, ctx.total_batches) == (0, 1)
    assert ctx.batch_metadata == {"cursor_field": "product_id", "failure_strategy": "fail_fast"}
    assert ctx.has_checkpoint() is False
    assert ctx.checkpoint_items_processed == 0


def test_batch_context_prefers_an_explicit_cursor_step_size() -> None:
    ctx = BatchWorkerContext.from_step_context(_context(_worker_inputs(step_size=50)))
    assert ctx is not None
    assert ctx.step_size == 50


def test_batch_context_step_size_falls_back_to_one_for_an_empty_batch() -> None:
    ctx = BatchWorkerContext.from_step_context(
        _context(_worker_inputs(start_cursor=0, end_cursor=0, batch_size=0))
    )
    assert ctx is not None
    assert ctx.step_size == 1


def test_batch_context_reads_the_checkpoint() -> None:
    checkpoint = {"cursor": 750, "items_processed": 250,
                  "accumulated_results": {"running_total": 281625}, "history": []}  # fmt: skip
    ctx = BatchWorkerContext.from_step_context(_context(_worker_inputs(), checkpoint=checkpoint))
    assert ctx is not None
    assert ctx.has_checkpoint() is True
    assert ctx.checkpoint_cursor == 750
    assert ctx.checkpoint_items_processed == 250
    assert ctx.accumulated_results == {"running_total": 281625}


def test_checkpoint_without_cursor_is_not_a_checkpoint() -> None:
    ctx = BatchWorkerContext.from_step_context(
        _context(_worker_inputs(), checkpoint={"items_processed": 10})
    )
    assert ctx is not None
    assert ctx.has_checkpoint() is False
    assert ctx.checkpoint_items_processed == 10


def test_batch_context_is_none_for_token_cursors_which_worker_inputs_still_carry() -> None:
    context = _context(_worker_inputs(start_cursor="2025-01-01", end_cursor="2025-02-01"))
    assert BatchWorkerContext.from_step_context(context) is None
    inputs = Worker().get_batch_worker_inputs(context)
    assert inputs is not None
    assert inputs.cursor.start_cursor == "2025-01-01"


def test_batch_context_falls_back_to_legacy_batch_context_in_step_config() -> None:
    legacy = {"batch_id": "b7", "batch_index": 2, "total_batches": 4,
              "cursor_config": {"start_cursor": 20, "end_cursor": 30, "step_size": 5},
              "batch_metadata": {"k": 1}}  # fmt: skip
    ctx = BatchWorkerContext.from_step_context(_context(step_config={"batch_context": legacy}))
    assert ctx is not None
    assert (ctx.batch_id, ctx.batch_index, ctx.total_batches) == ("b7", 2, 4)
    assert (ctx.start_cursor, ctx.end_cursor, ctx.step_size) == (20, 30, 5)
    from_input = BatchWorkerContext.from_step_context(
        _context(input_data={"batch_context": legacy})
    )
    assert from_input == ctx


def test_batch_context_is_none_without_batch_data() -> None:
    assert BatchWorkerContext.from_step_context(_context({"mode": "full"})) is None


def test_create_batch_context_numbers_batches_like_the_engine() -> None:
    ctx = Worker().create_batch_context(CursorConfig(start_cursor=0, end_cursor=10), 1, 3)
    assert (ctx.batch_id, ctx.batch_index, ctx.total_batches) == ("002", 1, 3)


def test_batch_worker_success_shape_and_metadata() -> None:
    result = Worker().batch_worker_success(
        items_processed=500, items_failed=0, last_cursor=999, batch_metadata={"shard": 2}
    )
    assert result.result == {
        "items_processed": 500,
        "items_succeeded": 500,
        "items_failed": 0,
        "items_skipped": 0,
        "last_cursor": 999,
        "batch_metadata": {"shard": 2},
    }
    assert result.metadata == {"batch_worker": True}


def test_batch_worker_success_from_outcome_keeps_explicit_zero_succeeded() -> None:
    handler = Worker()
    outcome = handler.create_worker_outcome(
        10, items_succeeded=0, items_failed=10, errors=[{"item": 3, "error": "bad"}]
    )
    result = handler.batch_worker_success(outcome, metadata={"a": 1})
    assert result.result is not None
    assert result.result["items_succeeded"] == 0
    assert result.result["errors"] == [{"item": 3, "error": "bad"}]
    assert "results" not in result.result
    assert result.metadata == {"a": 1, "batch_worker": True}


def test_batch_worker_success_without_counts_is_a_permanent_invalid_args_failure() -> None:
    result = Worker().batch_worker_success()
    assert (result.is_success, result.error_type, result.retryable) == (
        False,
        "invalid_args",
        False,
    )


def test_batch_worker_partial_failure_flags_the_result_and_metadata() -> None:
    handler = Worker()
    outcome = handler.create_worker_outcome(10, items_succeeded=8, items_failed=2)
    result = handler.batch_worker_partial_failure(outcome, "2 rows rejected")
    assert result.is_success
    assert result.result is not None
    assert result.result["partial_failure"] is True
    assert result.result["partial_failure_message"] == "2 rows rejected"
    assert result.metadata == {"batch_worker": True, "had_failures": True}


def test_checkpoint_yield_shape() -> None:
    result = Worker().checkpoint_yield(750, 750, {"running_total": 281625})
    assert result.is_success
    assert result.result == {
        "type": "checkpoint_yield",
        "cursor": 750,
        "items_processed": 750,
        "accumulated_results": {"running_total": 281625},
    }
    assert result.metadata == {"checkpoint_yield": True, "batch_worker": True}


def test_checkpoint_yield_omits_missing_accumulated_results_and_keeps_token_cursor() -> None:
    result = Worker().checkpoint_yield({"page_token": "abc"}, 40)
    assert result.result == {
        "type": "checkpoint_yield",
        "cursor": {"page_token": "abc"},
        "items_processed": 40,
    }


# -- aggregation -------------------------------------------------------------------------------


def test_detect_with_batches_unwraps_workers_and_ignores_other_steps() -> None:
    deps = {
        "load_catalog": _envelope({"rows": 1200}),
        "plan_reindex": _envelope({"batch_processing_outcome": {"type": "create_batches"}}),
        "reindex_batch_001": _envelope({"items_processed": 500}),
        "reindex_batch_002": _envelope({"items_processed": 500}),
    }
    scenario = Worker().detect_aggregation_scenario(deps, "plan_reindex", "reindex_batch_")
    assert scenario.is_no_batches is False
    assert scenario.no_batches() is False
    assert scenario.worker_count == 2
    assert scenario.batch_results == {
        "reindex_batch_001": {"items_processed": 500},
        "reindex_batch_002": {"items_processed": 500},
    }
    assert scenario.batchable_result == {"batch_processing_outcome": {"type": "create_batches"}}


def test_detect_never_counts_the_analyzer_as_a_worker() -> None:
    deps = {
        "reindex_batch_plan": _envelope({"batch_processing_outcome": {"type": "create_batches"}}),
        "reindex_batch_001": _envelope({"items_processed": 5}),
    }
    scenario = BatchAggregationScenario.detect(deps, "reindex_batch_plan", "reindex_batch_")
    assert list(scenario.batch_results) == ["reindex_batch_001"]
    assert scenario.worker_count == 1


def test_detect_no_batches_ignores_the_placeholder_worker() -> None:
    deps = {
        "plan_reindex": _envelope(
            {"batch_processing_outcome": {"type": "no_batches"}, "reason": "empty_dataset"}
        ),
        "reindex_batch_000": _envelope({"batch_id": "000", "no_op": True}),
    }
    scenario = BatchAggregationScenario.detect(deps, "plan_reindex", "reindex_batch_")
    assert scenario == BatchAggregationScenario(
        is_no_batches=True,
        batchable_result={
            "batch_processing_outcome": {"type": "no_batches"},
            "reason": "empty_dataset",
        },
        batch_results={},
        worker_count=0,
    )


def test_detect_without_analyzer_result_raises() -> None:
    deps = {"reindex_batch_001": _envelope({"items_processed": 1})}
    with pytest.raises(ValueError, match="'plan_reindex'"):
        BatchAggregationScenario.detect(deps, "plan_reindex", "reindex_batch_")


def test_detect_with_batches_but_no_matching_worker_raises() -> None:
    deps = {
        "plan_reindex": _envelope({"batch_processing_outcome": {"type": "create_batches"}}),
        "other_batch_001": _envelope({"items_processed": 1}),
    }
    with pytest.raises(ValueError, match="'reindex_batch_'"):
        BatchAggregationScenario.detect(deps, "plan_reindex", "reindex_batch_")


def test_aggregate_batch_worker_results_with_an_aggregation_function() -> None:
    handler = Worker()
    deps = {
        "plan": _envelope({"batch_processing_outcome": {"type": "create_batches"}}),
        "w_001": _envelope({"items_processed": 500}),
        "w_002": _envelope({"items_processed": 200}),
    }
    scenario = handler.detect_aggregation_scenario(deps, "plan", "w_")
    result = handler.aggregate_batch_worker_results(
        scenario,
        aggregation_fn=lambda r: {"total": sum(v["items_processed"] for v in r.values())},
    )
    assert result.result == {"total": 700, "worker_count": 2, "scenario": "with_batches"}


def test_aggregate_batch_worker_results_defaults_to_batch_results() -> None:
    scenario = BatchAggregationScenario(False, {}, {"w_001": {"n": 1}}, 1)
    result = Worker().aggregate_batch_worker_results(scenario)
    assert result.result == {
        "batch_results": {"w_001": {"n": 1}},
        "worker_count": 1,
        "scenario": "with_batches",
    }


def test_aggregate_batch_worker_results_no_batches_reports_zero_metrics() -> None:
    scenario = BatchAggregationScenario(True, {}, {}, 0)
    result = Worker().aggregate_batch_worker_results(scenario, zero_metrics={"total": 0})
    assert result.result == {"worker_count": 0, "scenario": "no_batches", "total": 0}


def test_aggregate_worker_results_counts_none_as_a_batch() -> None:
    results: list[dict[str, Any] | None] = [
        {"items_processed": 10, "items_succeeded": 9, "items_failed": 1,
         "errors": [{"item": 4}]},
        None,
        {"items_processed": 10, "items_succeeded": 10, "items_skipped": 2},
    ]  # fmt: skip
    summary = Batchable.aggregate_worker_results(results)
    assert summary == {
        "total_processed": 20,
        "total_succeeded": 19,
        "total_failed": 1,
        "total_skipped": 2,
        "batch_count": 3,
        "success_rate": 0.95,
        "errors": [{"item": 4}],
        "error_count": 1,
    }
    assert aggregate_batch_results(results).batch_count == 2


def test_aggregate_batch_results_caps_errors_but_counts_them_all() -> None:
    results: list[dict[str, Any] | None] = [
        {"items_processed": 0, "errors": [{"i": i} for i in range(3)]},
        {"items_processed": 0, "errors": [{"i": 3}]},
    ]
    summary = aggregate_batch_results(results, max_errors=2)
    assert summary.errors == [{"i": 0}, {"i": 1}]
    assert summary.error_count == 4
    assert summary.success_rate == 0.0
    assert len(Batchable.aggregate_worker_results([{"errors": [{}] * 150}])["errors"]) == 100


def test_no_batches_aggregation_result() -> None:
    result = Worker().no_batches_aggregation_result({"total_value": 0.0})
    assert result.result == {"worker_count": 0, "scenario": "no_batches", "total_value": 0.0}


# -- execution result models -------------------------------------------------------------------


def test_step_execution_failure_status_follows_retryable() -> None:
    step_uuid, task_uuid = uuid.uuid4(), uuid.uuid4()
    retryable = StepExecutionResult.failure_result(
        step_uuid=step_uuid,
        task_uuid=task_uuid,
        error=StepError(error_type="x", message="m"),
        execution_time_ms=5,
        worker_id="w",
    )
    permanent = StepExecutionResult.failure_result(
        step_uuid=step_uuid,
        task_uuid=task_uuid,
        error=StepError(error_type="x", message="m", retryable=False),
        execution_time_ms=5,
        worker_id="w",
    )
    ok = StepExecutionResult.success_result(
        step_uuid=step_uuid,
        task_uuid=task_uuid,
        result={"a": 1},
        execution_time_ms=5,
        worker_id="w",
    )
    assert (retryable.status, permanent.status, ok.status) == (
        "retryable_error",
        "permanent_error",
        "completed",
    )
    assert (retryable.success, ok.success) == (False, True)
