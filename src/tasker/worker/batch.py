"""Batch processing for handlers: analyzer, worker and aggregator helpers (python-api.md §5.3-5.4).

An analyzer splits the work into cursor ranges, the engine creates one worker step per range
(batch-and-decisions.md §2.2), and a convergence step aggregates the workers' results. The
``Batchable`` mixin builds each of those results in the exact shape the engine reads, so
handler code never writes ``batch_processing_outcome`` or a checkpoint yield by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tasker.worker.batch_types import (
    BatchAnalyzerOutcome,
    BatchWorkerContext,
    BatchWorkerOutcome,
    Cursor,
    CursorConfig,
    RustBatchWorkerInputs,
    RustCursorConfig,
    aggregate_batch_results,
    create_batches,
    no_batches,
)
from tasker.worker.models import unwrap_result

if TYPE_CHECKING:
    from tasker.worker.context import StepContext
    from tasker.worker.results import StepHandlerResult

__all__ = ["BatchAggregationScenario", "BatchWorkerConfig", "Batchable"]

AggregationFn = Callable[[dict[str, dict[str, Any]]], dict[str, Any]]


def _batch_id(index: int) -> str:
    """Batch ids are 1-based, zero-padded to three digits; ``000`` is the no-op placeholder."""
    return f"{index + 1:03d}"


@dataclass(frozen=True, slots=True)
class BatchWorkerConfig:
    """One worker's share when work is split across a fixed number of workers."""

    batch_id: str
    cursor_start: int
    cursor_end: int
    row_count: int
    worker_index: int
    total_workers: int

    def to_dict(self) -> dict[str, Any]:
        """The six fields as a dict."""
        return {
            "batch_id": self.batch_id,
            "cursor_start": self.cursor_start,
            "cursor_end": self.cursor_end,
            "row_count": self.row_count,
            "worker_index": self.worker_index,
            "total_workers": self.total_workers,
        }


@dataclass(slots=True)
class BatchAggregationScenario:
    """What a convergence step aggregates: the analyzer's result and each worker's result.

    ``is_no_batches`` means the analyzer returned ``no_batches``; the engine's ``_000``
    placeholder worker is then ignored (``batch_results`` empty, ``worker_count`` 0).
    """

    is_no_batches: bool
    batchable_result: dict[str, Any]
    batch_results: dict[str, dict[str, Any]]
    worker_count: int

    @classmethod
    def detect(
        cls,
        dependency_results: dict[str, Any],
        batchable_step_name: str,
        batch_worker_prefix: str,
    ) -> BatchAggregationScenario:
        """Find the analyzer's outcome and the workers among a step's dependency results.

        Args:
            dependency_results: raw envelopes keyed by step name (``context.dependency_results``).
            batchable_step_name: the analyzer step's name.
            batch_worker_prefix: worker name prefix, ``"<worker_template>_"``.

        Returns:
            The scenario; worker results are unwrapped (their envelope's ``result``).

        Raises:
            ValueError: the analyzer has no result, or it asked for batches and no worker
                result matches the prefix (a template wiring mistake).
        """
        analyzer = unwrap_result(dependency_results.get(batchable_step_name))
        if analyzer is None:
            msg = (
                f"batch aggregation: no result for analyzer step {batchable_step_name!r} among "
                f"dependency results ({', '.join(dependency_results) or 'none'}); the "
                "convergence step must depend (transitively) on the batchable step"
            )
            raise ValueError(msg)
        batchable_result: dict[str, Any] = analyzer if isinstance(analyzer, dict) else {}
        outcome = batchable_result.get("batch_processing_outcome")
        if isinstance(outcome, dict) and outcome.get("type") == "no_batches":
            return cls(True, batchable_result, {}, 0)
        batch_results: dict[str, dict[str, Any]] = {}
        for name, entry in dependency_results.items():
            if name.startswith(batch_worker_prefix) and name != batchable_step_name:
                result = unwrap_result(entry)
                batch_results[name] = result if isinstance(result, dict) else {}
        if not batch_results:
            msg = (
                f"batch aggregation: analyzer {batchable_step_name!r} did not return no_batches, "
                f"but no dependency result is named {batch_worker_prefix!r}*; check the worker "
                "template name and the convergence step's dependencies"
            )
            raise ValueError(msg)
        return cls(False, batchable_result, batch_results, len(batch_results))

    def no_batches(self) -> bool:
        """Alias of ``is_no_batches``."""
        return self.is_no_batches


class Batchable:
    """Batch helpers for analyzer, worker and aggregator handlers; mix with ``StepHandler``."""

    if TYPE_CHECKING:
        # Provided by StepHandler; declared so the helpers type-check inside the mixin.
        def success(
            self,
            result: dict[str, Any] | None = None,
            metadata: dict[str, Any] | None = None,
        ) -> StepHandlerResult: ...

        def failure(
            self,
            message: str,
            error_type: str = "handler_error",
            retryable: bool = True,
            metadata: dict[str, Any] | None = None,
            error_code: str | None = None,
        ) -> StepHandlerResult: ...

    # -- cursors ---------------------------------------------------------------------------

    def create_cursor_config(
        self,
        start: int,
        end: int,
        step_size: int = 1,
        metadata: dict[str, Any] | None = None,
    ) -> CursorConfig:
        """One range ``[start, end)``.

        Args:
            start: first position.
            end: end position (exclusive).
            step_size: stride within the range.
            metadata: extra data for the range.

        Returns:
            The cursor config.
        """
        return CursorConfig(
            start_cursor=start, end_cursor=end, step_size=step_size, metadata=dict(metadata or {})
        )

    def create_cursor_ranges(
        self,
        total_items: int,
        batch_size: int,
        step_size: int = 1,
        max_batches: int | None = None,
    ) -> list[CursorConfig]:
        """Cut ``[0, total_items)`` into contiguous ranges of ``batch_size`` items.

        Args:
            total_items: number of items; ``0`` (or less) gives no ranges.
            batch_size: items per range (the last range may be shorter).
            step_size: stride recorded on every range.
            max_batches: cap on the number of ranges; when more would result, the size becomes
                ``ceil(total_items / max_batches)``. ``None`` or ``<= 0`` means no cap.

        Returns:
            The ranges in order.

        Raises:
            ValueError: ``batch_size <= 0`` while there are items.
        """
        if total_items <= 0:
            return []
        if batch_size <= 0:
            msg = f"create_cursor_ranges: batch_size must be > 0, got {batch_size}"
            raise ValueError(msg)
        if max_batches is not None and 0 < max_batches < math.ceil(total_items / batch_size):
            batch_size = math.ceil(total_items / max_batches)
        return [
            CursorConfig(
                start_cursor=start,
                end_cursor=min(start + batch_size, total_items),
                step_size=step_size,
            )
            for start in range(0, total_items, batch_size)
        ]

    def create_cursor_configs(self, total_items: int, worker_count: int) -> list[BatchWorkerConfig]:
        """Split ``[0, total_items)`` across ``worker_count`` workers, ``ceil(total/count)`` each.

        1000 items over 3 workers give 0-334, 334-668, 668-1000. Workers that would get
        nothing are left out, so fewer configs than workers may come back.

        Args:
            total_items: number of items.
            worker_count: number of workers.

        Returns:
            One config per worker with items.

        Raises:
            ValueError: ``worker_count <= 0``.
        """
        if worker_count <= 0:
            msg = f"create_cursor_configs: worker_count must be > 0, got {worker_count}"
            raise ValueError(msg)
        if total_items <= 0:
            return []
        per_worker = math.ceil(total_items / worker_count)
        configs: list[BatchWorkerConfig] = []
        for index in range(worker_count):
            start = index * per_worker
            if start >= total_items:
                break
            end = min(start + per_worker, total_items)
            configs.append(
                BatchWorkerConfig(_batch_id(index), start, end, end - start, index, worker_count)
            )
        return configs

    # -- analyzer --------------------------------------------------------------------------

    def create_batch_outcome(
        self,
        total_items: int,
        batch_size: int,
        step_size: int = 1,
        batch_metadata: dict[str, Any] | None = None,
    ) -> BatchAnalyzerOutcome:
        """Fixed-size ranges over ``total_items``, ready for ``batch_analyzer_success``.

        Args:
            total_items: number of items.
            batch_size: items per batch.
            step_size: stride recorded on every range.
            batch_metadata: descriptive metadata for the analyzer result.

        Returns:
            The outcome (no ranges when ``total_items`` is 0).
        """
        return BatchAnalyzerOutcome(
            cursor_configs=self.create_cursor_ranges(total_items, batch_size, step_size),
            total_items=total_items,
            batch_metadata=dict(batch_metadata or {}),
        )

    def create_batch_outcome_from_ranges(
        self,
        ranges: list[tuple[int, int]],
        step_size: int = 1,
        total_items: int | None = None,
        batch_metadata: dict[str, Any] | None = None,
    ) -> BatchAnalyzerOutcome:
        """Explicit ``(start, end)`` ranges, for uneven partitions.

        Args:
            ranges: half-open ranges in batch order.
            step_size: stride recorded on every range.
            total_items: total count; ``batch_analyzer_success`` sums the ranges when ``None``.
            batch_metadata: descriptive metadata.

        Returns:
            The outcome.
        """
        return BatchAnalyzerOutcome.from_ranges(ranges, step_size, total_items, batch_metadata)

    def batch_analyzer_success(
        self,
        outcome: BatchAnalyzerOutcome | None = None,
        metadata: dict[str, Any] | None = None,
        worker_template_name: str = "batch_worker",
        cursor_configs: list[CursorConfig] | None = None,
        total_items: int | None = None,
        batch_metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Ask the engine for one worker per range (or none, when there are no ranges).

        Pass either ``outcome`` or ``cursor_configs`` (+ ``total_items``, ``batch_metadata``);
        the keyword form wins when both are given.

        Args:
            outcome: ranges, total and metadata together.
            metadata: extra result metadata (``batch_analyzer: true`` is added).
            worker_template_name: the template's ``batch_worker`` step; pass the real name.
            cursor_configs: ranges (keyword form).
            total_items: total count; the sum of the range sizes when ``None``.
            batch_metadata: descriptive metadata stored beside the outcome.

        Returns:
            A success whose result holds ``batch_processing_outcome`` of type
            ``create_batches`` with batch ids ``001``..., or a ``no_batches`` success when there
            is nothing to split (reason ``batch_metadata["reason"]``, else ``empty_dataset``;
            ``no_cursor_configs_provided`` when neither form was given).
        """
        if cursor_configs is not None:
            configs, total, batch_meta = cursor_configs, total_items, dict(batch_metadata or {})
        elif outcome is not None:
            configs, total = outcome.cursor_configs, outcome.total_items
            batch_meta = dict(outcome.batch_metadata)
        else:
            return self._no_batches_result("no_cursor_configs_provided", {}, metadata)
        if not configs:
            reason = str(batch_meta.get("reason", "empty_dataset"))
            return self._no_batches_result(reason, batch_meta, metadata)
        cursors = [
            RustCursorConfig(
                batch_id=_batch_id(index),
                start_cursor=config.start_cursor,
                end_cursor=config.end_cursor,
                batch_size=config.end_cursor - config.start_cursor,
            )
            for index, config in enumerate(configs)
        ]
        if total is None:
            total = sum(cursor.batch_size for cursor in cursors)
        batch_outcome = create_batches(worker_template_name, len(cursors), cursors, total)
        result: dict[str, Any] = {
            "batch_processing_outcome": batch_outcome.model_dump(mode="json"),
            "worker_count": len(cursors),
            "total_items": total,
        }
        if batch_meta:
            result["batch_metadata"] = batch_meta
        return self.success(result, metadata={**(metadata or {}), "batch_analyzer": True})

    def no_batches_outcome(
        self, reason: str, metadata: dict[str, Any] | None = None
    ) -> StepHandlerResult:
        """Tell the engine there is nothing to split (it then runs one no-op worker).

        Args:
            reason: why, e.g. ``"empty_dataset"``.
            metadata: merged into the *result* beside the outcome.

        Returns:
            A success with ``{"batch_processing_outcome": {"type": "no_batches"}, "reason", ...}``
            and metadata ``{batch_analyzer: true, no_batches: true}``.
        """
        return self._no_batches_result(reason, metadata or {}, None)

    def _no_batches_result(
        self, reason: str, extra: dict[str, Any], metadata: dict[str, Any] | None
    ) -> StepHandlerResult:
        result: dict[str, Any] = {
            "reason": reason,
            **extra,
            "batch_processing_outcome": no_batches().model_dump(mode="json"),
        }
        step_metadata = {**(metadata or {}), "batch_analyzer": True, "no_batches": True}
        return self.success(result, metadata=step_metadata)

    # -- worker ----------------------------------------------------------------------------

    def get_batch_worker_inputs(self, context: StepContext) -> RustBatchWorkerInputs | None:
        """The engine's worker inputs (cursor of any JSON type, batch metadata, no-op flag).

        Args:
            context: the running step's context.

        Returns:
            The inputs, or ``None`` when ``step_inputs`` is not a batch worker's.
        """
        if not context.step_inputs:
            return None
        try:
            return RustBatchWorkerInputs.model_validate(context.step_inputs)
        except ValidationError:
            return None

    def handle_no_op_worker(
        self, context: StepContext, *, now: datetime | None = None
    ) -> StepHandlerResult | None:
        """Succeed at once if this is the ``_000`` placeholder of a ``no_batches`` analyzer.

        Call it first in a worker: ``if (done := self.handle_no_op_worker(ctx)): return done``.

        Args:
            context: the running step's context.
            now: timestamp for ``processed_at`` (current UTC time by default).

        Returns:
            The no-op success, or ``None`` for a real worker.
        """
        inputs = self.get_batch_worker_inputs(context)
        if inputs is None or not inputs.is_no_op:
            return None
        processed_at = (now or datetime.now(UTC)).isoformat()
        return self.success(
            {
                "batch_id": inputs.cursor.batch_id,
                "no_op": True,
                "processed_count": 0,
                "message": "No batches to process",
                "processed_at": processed_at,
            }
        )

    def get_batch_context(self, context: StepContext) -> BatchWorkerContext | None:
        """This worker's range and checkpoint (``BatchWorkerContext.from_step_context``)."""
        return BatchWorkerContext.from_step_context(context)

    def create_batch_context(
        self,
        cursor_config: CursorConfig,
        batch_index: int,
        total_batches: int,
        batch_metadata: dict[str, Any] | None = None,
    ) -> BatchWorkerContext:
        """Build a worker context by hand (tests, local runs); ``batch_id`` follows ``001``...

        Args:
            cursor_config: the range.
            batch_index: 0-based index of the batch.
            total_batches: number of batches.
            batch_metadata: the template's batch metadata.

        Returns:
            The context, without checkpoint.
        """
        return BatchWorkerContext(
            batch_id=_batch_id(batch_index),
            cursor_config=cursor_config,
            batch_index=batch_index,
            total_batches=total_batches,
            batch_metadata=dict(batch_metadata or {}),
        )

    def create_worker_outcome(
        self,
        items_processed: int,
        items_succeeded: int | None = None,
        items_failed: int = 0,
        items_skipped: int = 0,
        results: list[dict[str, Any]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        last_cursor: Cursor | None = None,
        batch_metadata: dict[str, Any] | None = None,
    ) -> BatchWorkerOutcome:
        """A worker's counts; ``items_succeeded`` defaults to ``items_processed``.

        Args:
            items_processed: items handled in this batch.
            items_succeeded: items that succeeded (an explicit ``0`` stays ``0``).
            items_failed: items that failed.
            items_skipped: items skipped.
            results: per-item results.
            errors: per-item errors.
            last_cursor: last position handled.
            batch_metadata: descriptive metadata.

        Returns:
            The outcome.
        """
        return BatchWorkerOutcome(
            items_processed=items_processed,
            items_succeeded=items_processed if items_succeeded is None else items_succeeded,
            items_failed=items_failed,
            items_skipped=items_skipped,
            results=list(results or []),
            errors=list(errors or []),
            last_cursor=last_cursor,
            batch_metadata=dict(batch_metadata or {}),
        )

    def batch_worker_success(
        self,
        outcome: BatchWorkerOutcome | None = None,
        metadata: dict[str, Any] | None = None,
        items_processed: int | None = None,
        items_succeeded: int | None = None,
        items_failed: int = 0,
        items_skipped: int = 0,
        results: list[dict[str, Any]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        last_cursor: Cursor | None = None,
        batch_metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Complete a worker with its counts; pass ``outcome`` or ``items_processed=...``.

        Args:
            outcome: the counts together (used when ``items_processed`` is ``None``).
            metadata: extra result metadata (``batch_worker: true`` is added).
            items_processed: keyword form; wins over ``outcome``.
            items_succeeded: defaults to ``items_processed``.
            items_failed: items that failed.
            items_skipped: items skipped.
            results: per-item results (stored only when non-empty).
            errors: per-item errors (stored only when non-empty).
            last_cursor: last position handled.
            batch_metadata: descriptive metadata.

        Returns:
            The success, or a non-retryable ``invalid_args`` failure when neither form is given.
        """
        if items_processed is not None:
            outcome = self.create_worker_outcome(
                items_processed,
                items_succeeded,
                items_failed,
                items_skipped,
                results,
                errors,
                last_cursor,
                batch_metadata,
            )
        elif outcome is None:
            return self.failure(
                "batch_worker_success needs an outcome or items_processed",
                error_type="invalid_args",
                retryable=False,
            )
        result = _worker_result(outcome)
        return self.success(result, metadata={**(metadata or {}), "batch_worker": True})

    def batch_worker_partial_failure(
        self,
        outcome: BatchWorkerOutcome,
        message: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Complete a worker that lost some items (a success, flagged for aggregation).

        Args:
            outcome: the counts.
            message: stored as ``partial_failure_message``.
            metadata: extra result metadata.

        Returns:
            A success with ``partial_failure: true``; metadata adds ``batch_worker`` and
            ``had_failures``.
        """
        result = {**_worker_result(outcome), "partial_failure": True}
        if message:
            result["partial_failure_message"] = message
        step_metadata = {**(metadata or {}), "batch_worker": True, "had_failures": True}
        return self.success(result, metadata=step_metadata)

    def checkpoint_yield(
        self,
        cursor: Cursor | None,
        items_processed: int,
        accumulated_results: Any = None,
    ) -> StepHandlerResult:
        """Save progress and be called again at once, without completing the step (§5.4).

        Args:
            cursor: where the next segment starts (int, str or dict).
            items_processed: cumulative count across all segments.
            accumulated_results: JSON carried to the next segment (omitted when ``None``).

        Returns:
            A success-shaped yield: result ``{"type": "checkpoint_yield", "cursor",
            "items_processed", "accumulated_results"?}``, metadata
            ``{checkpoint_yield: true, batch_worker: true}``.
        """
        result: dict[str, Any] = {
            "type": "checkpoint_yield",
            "cursor": cursor,
            "items_processed": items_processed,
        }
        if accumulated_results is not None:
            result["accumulated_results"] = accumulated_results
        return self.success(result, metadata={"checkpoint_yield": True, "batch_worker": True})

    # -- aggregator ------------------------------------------------------------------------

    def detect_aggregation_scenario(
        self,
        dependency_results: dict[str, Any],
        batchable_step_name: str,
        batch_worker_prefix: str,
    ) -> BatchAggregationScenario:
        """``BatchAggregationScenario.detect``; see there."""
        return BatchAggregationScenario.detect(
            dependency_results, batchable_step_name, batch_worker_prefix
        )

    def no_batches_aggregation_result(
        self, zero_metrics: dict[str, Any] | None = None
    ) -> StepHandlerResult:
        """Complete a convergence step whose analyzer created no batches.

        Args:
            zero_metrics: the metrics to report (normally zeros).

        Returns:
            A success ``{"worker_count": 0, "scenario": "no_batches", **zero_metrics}``.
        """
        return self.success({"worker_count": 0, "scenario": "no_batches", **(zero_metrics or {})})

    def aggregate_batch_worker_results(
        self,
        scenario: BatchAggregationScenario,
        zero_metrics: dict[str, Any] | None = None,
        aggregation_fn: AggregationFn | None = None,
    ) -> StepHandlerResult:
        """Complete a convergence step in either scenario.

        Args:
            scenario: from ``detect_aggregation_scenario``.
            zero_metrics: reported when there were no batches.
            aggregation_fn: maps ``{worker_name: result}`` to the metrics to report; by default
                the worker results are reported as ``batch_results``.

        Returns:
            ``no_batches_aggregation_result(zero_metrics)``, or a success
            ``{**aggregated, "worker_count", "scenario": "with_batches"}``.
        """
        if scenario.is_no_batches:
            return self.no_batches_aggregation_result(zero_metrics)
        if aggregation_fn is None:
            aggregated: dict[str, Any] = {"batch_results": scenario.batch_results}
        else:
            aggregated = aggregation_fn(scenario.batch_results)
        return self.success(
            {**aggregated, "worker_count": scenario.worker_count, "scenario": "with_batches"}
        )

    @staticmethod
    def aggregate_worker_results(worker_results: list[dict[str, Any] | None]) -> dict[str, Any]:
        """Sum worker counts; unlike ``aggregate_batch_results``, ``batch_count`` counts ``None``.

        Args:
            worker_results: unwrapped worker results.

        Returns:
            ``{total_processed, total_succeeded, total_failed, total_skipped, batch_count,
            success_rate, errors (first 100), error_count}``.
        """
        summary = aggregate_batch_results(worker_results).model_dump()
        summary["batch_count"] = len(worker_results)
        return summary


def _worker_result(outcome: BatchWorkerOutcome) -> dict[str, Any]:
    """The worker result the convergence step reads; empty ``results``/``errors`` are omitted."""
    result: dict[str, Any] = {
        "items_processed": outcome.items_processed,
        "items_succeeded": outcome.items_succeeded,
        "items_failed": outcome.items_failed,
        "items_skipped": outcome.items_skipped,
        "last_cursor": outcome.last_cursor,
        "batch_metadata": outcome.batch_metadata,
    }
    if outcome.results:
        result["results"] = outcome.results
    if outcome.errors:
        result["errors"] = outcome.errors
    return result
