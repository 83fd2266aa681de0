"""Typed models for batch analyzers, batch workers and step execution results (python-api.md §11).

These are the pydantic shapes ported handlers import from ``tasker.types``. The engine never
reads these classes: it reads the plain dicts they dump to (batch-and-decisions.md §2), so every
``model_dump`` here must produce exactly the documented JSON.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError

from tasker.domain.template import FailureStrategy
from tasker.worker.results import ResultStatus

if TYPE_CHECKING:
    from tasker.worker.context import StepContext

__all__ = [
    "BatchAggregationResult",
    "BatchAnalyzerOutcome",
    "BatchMetadata",
    "BatchProcessingOutcome",
    "BatchWorkerContext",
    "BatchWorkerOutcome",
    "CreateBatchesOutcome",
    "Cursor",
    "CursorConfig",
    "FailureStrategy",
    "NoBatchesOutcome",
    "RustBatchWorkerInputs",
    "RustCursorConfig",
    "StepError",
    "StepExecutionResult",
    "aggregate_batch_results",
    "create_batches",
    "no_batches",
]

_log = logging.getLogger(__name__)

Cursor = int | str | dict[str, Any]
"""A resume position: integer offset, opaque string token or composite key (JSON any)."""

DEFAULT_MAX_ERRORS = 100


# --------------------------------------------------------------------------- analyzer side


class CursorConfig(BaseModel):
    """One half-open integer range ``[start_cursor, end_cursor)`` chosen by an analyzer."""

    start_cursor: int
    end_cursor: int
    step_size: int = 1
    metadata: dict[str, Any] = Field(default_factory=dict)


class BatchAnalyzerOutcome(BaseModel):
    """What an analyzer decided: the ranges to hand out, before batch ids are assigned."""

    cursor_configs: list[CursorConfig] = Field(default_factory=list)
    total_items: int | None = None
    batch_metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_ranges(
        cls,
        ranges: list[tuple[int, int]],
        step_size: int = 1,
        total_items: int | None = None,
        batch_metadata: dict[str, Any] | None = None,
    ) -> BatchAnalyzerOutcome:
        """Build an outcome from explicit ``(start, end)`` pairs, for uneven partitions.

        Args:
            ranges: half-open ranges, in batch order.
            step_size: step size recorded on every range.
            total_items: total count, if known; left ``None`` otherwise.
            batch_metadata: descriptive metadata for the analyzer result.

        Returns:
            The outcome, one ``CursorConfig`` per pair.
        """
        return cls(
            cursor_configs=[
                CursorConfig(start_cursor=start, end_cursor=end, step_size=step_size)
                for start, end in ranges
            ],
            total_items=total_items,
            batch_metadata=dict(batch_metadata or {}),
        )


class RustCursorConfig(BaseModel):
    """A cursor as the engine stores it in a worker's inputs; cursors may be any JSON value."""

    batch_id: str
    start_cursor: Any
    end_cursor: Any
    batch_size: int


class NoBatchesOutcome(BaseModel):
    """``{"type": "no_batches"}``: the engine creates only the ``_000`` placeholder worker."""

    type: Literal["no_batches"] = "no_batches"


class CreateBatchesOutcome(BaseModel):
    """``{"type": "create_batches", ...}``: one worker per cursor config."""

    type: Literal["create_batches"] = "create_batches"
    worker_template_name: str
    worker_count: int
    cursor_configs: list[RustCursorConfig]
    total_items: int


BatchProcessingOutcome = Annotated[
    NoBatchesOutcome | CreateBatchesOutcome, Field(discriminator="type")
]
"""The value of ``result["batch_processing_outcome"]``, discriminated on ``type``."""


def no_batches() -> NoBatchesOutcome:
    """Return the outcome that asks for no workers.

    Returns:
        ``NoBatchesOutcome()``, dumping to ``{"type": "no_batches"}``.
    """
    return NoBatchesOutcome()


def create_batches(
    worker_template_name: str,
    worker_count: int,
    cursor_configs: list[RustCursorConfig],
    total_items: int,
) -> CreateBatchesOutcome:
    """Build a ``create_batches`` outcome, refusing a count the engine would reject.

    Args:
        worker_template_name: the template's ``batch_worker`` step to instantiate.
        worker_count: number of workers; must equal ``len(cursor_configs)``.
        cursor_configs: one cursor per worker.
        total_items: items across all batches (descriptive).

    Returns:
        The outcome.

    Raises:
        ValueError: ``worker_count`` differs from the number of cursor configs.
    """
    if len(cursor_configs) != worker_count:
        msg = (
            f"create_batches: worker_count is {worker_count} but {len(cursor_configs)} "
            "cursor_configs were given; pass one cursor config per worker"
        )
        raise ValueError(msg)
    return CreateBatchesOutcome(
        worker_template_name=worker_template_name,
        worker_count=worker_count,
        cursor_configs=cursor_configs,
        total_items=total_items,
    )


# --------------------------------------------------------------------------- worker side


class BatchMetadata(BaseModel):
    """The template's ``batch_config`` as a worker sees it in ``step_inputs``."""

    cursor_field: str
    failure_strategy: FailureStrategy


class RustBatchWorkerInputs(BaseModel):
    """A batch worker's ``step_inputs`` (batch-and-decisions.md §2.2 step 3); extra keys ignored."""

    cursor: RustCursorConfig
    batch_metadata: BatchMetadata
    is_no_op: bool


class BatchWorkerOutcome(BaseModel):
    """Counts and details a worker reports for its range."""

    items_processed: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    items_skipped: int = 0
    results: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    last_cursor: Cursor | None = None
    batch_metadata: dict[str, Any] = Field(default_factory=dict)


class BatchWorkerContext(BaseModel):
    """The range one worker owns, plus the checkpoint it may resume from (§5.3, §5.4)."""

    batch_id: str
    cursor_config: CursorConfig
    batch_index: int
    total_batches: int
    batch_metadata: dict[str, Any] = Field(default_factory=dict)
    checkpoint: dict[str, Any] = Field(default_factory=dict)

    @property
    def start_cursor(self) -> int:
        """First position of the range (inclusive)."""
        return self.cursor_config.start_cursor

    @property
    def end_cursor(self) -> int:
        """End of the range (exclusive)."""
        return self.cursor_config.end_cursor

    @property
    def step_size(self) -> int:
        """Stride a worker may use when walking its range."""
        return self.cursor_config.step_size

    @property
    def checkpoint_cursor(self) -> Cursor | None:
        """Cursor saved by the last checkpoint yield, or ``None`` on a fresh start."""
        cursor: Cursor | None = self.checkpoint.get("cursor")
        return cursor

    @property
    def accumulated_results(self) -> Any:
        """Partial results carried by the last checkpoint yield, or ``None``."""
        return self.checkpoint.get("accumulated_results")

    @property
    def checkpoint_items_processed(self) -> int:
        """Cumulative items processed before this segment; ``0`` without a checkpoint."""
        return int(self.checkpoint.get("items_processed") or 0)

    def has_checkpoint(self) -> bool:
        """Whether this run resumes a checkpoint (a saved cursor exists)."""
        return self.checkpoint_cursor is not None

    @classmethod
    def from_step_context(cls, step_context: StepContext) -> BatchWorkerContext | None:
        """Read the worker's range from ``step_inputs["cursor"]``, else a legacy ``batch_context``.

        Integer cursors only: a worker whose cursors are string tokens or objects gets ``None``
        and should read ``Batchable.get_batch_worker_inputs`` (``RustCursorConfig`` holds any
        JSON cursor).

        Args:
            step_context: the running step's context.

        Returns:
            The batch context, or ``None`` when the step carries no (integer) batch range.
        """
        checkpoint = step_context.checkpoint or {}
        cursor = step_context.step_inputs.get("cursor")
        if isinstance(cursor, dict):
            return cls._from_engine_inputs(step_context.step_inputs, cursor, checkpoint)
        legacy = step_context.step_config.get("batch_context")
        if legacy is None:
            legacy = step_context.input_data.get("batch_context")
        if isinstance(legacy, dict):
            return cls._from_legacy(legacy, checkpoint)
        return None

    @classmethod
    def _from_engine_inputs(
        cls, inputs: dict[str, Any], cursor: dict[str, Any], checkpoint: dict[str, Any]
    ) -> BatchWorkerContext | None:
        """Map the engine's worker inputs (one cursor per worker, so index 0 of 1)."""
        start, end = _as_int(cursor.get("start_cursor")), _as_int(cursor.get("end_cursor"))
        if start is None or end is None:
            _log.debug("batch cursor %r is not an integer range; no BatchWorkerContext", cursor)
            return None
        step_size = _positive_int(cursor.get("step_size")) or _positive_int(
            cursor.get("batch_size")
        )
        metadata = inputs.get("batch_metadata")
        return cls(
            batch_id=str(cursor.get("batch_id", "")),
            cursor_config=CursorConfig(
                start_cursor=start, end_cursor=end, step_size=step_size or 1
            ),
            batch_index=0,
            total_batches=1,
            batch_metadata=dict(metadata) if isinstance(metadata, dict) else {},
            checkpoint=checkpoint,
        )

    @classmethod
    def _from_legacy(
        cls, data: dict[str, Any], checkpoint: dict[str, Any]
    ) -> BatchWorkerContext | None:
        """Map the original's ``batch_context`` dict (``cursor_config``, ``batch_index``, ...)."""
        try:
            return cls.model_validate(
                {
                    "batch_id": str(data.get("batch_id", "")),
                    "cursor_config": {
                        "start_cursor": 0,
                        "end_cursor": 0,
                        **(data.get("cursor_config") or {}),
                    },
                    "batch_index": data.get("batch_index", 0),
                    "total_batches": data.get("total_batches", 1),
                    "batch_metadata": data.get("batch_metadata") or {},
                    "checkpoint": checkpoint,
                }
            )
        except ValidationError:
            _log.debug("legacy batch_context %r does not validate; no BatchWorkerContext", data)
            return None


def _as_int(value: object) -> int | None:
    """``value`` if it is a JSON integer (``bool`` excluded), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _positive_int(value: object) -> int | None:
    number = _as_int(value)
    return number if number is not None and number > 0 else None


# --------------------------------------------------------------------------- aggregation


class BatchAggregationResult(BaseModel):
    """Totals across batch workers, as a convergence step typically reports them."""

    total_processed: int
    total_succeeded: int
    total_failed: int
    total_skipped: int
    batch_count: int
    success_rate: float
    errors: list[dict[str, Any]] = Field(default_factory=list)
    error_count: int


def aggregate_batch_results(
    worker_results: list[dict[str, Any] | None], max_errors: int = DEFAULT_MAX_ERRORS
) -> BatchAggregationResult:
    """Aggregate worker results; ``None`` entries are skipped and not counted as batches.

    Args:
        worker_results: unwrapped worker results, e.g. from ``get_dependency_result``.
        max_errors: how many error entries to keep in ``errors``.

    Returns:
        Totals, ``success_rate`` (succeeded / processed, ``0.0`` when nothing was processed),
        the first ``max_errors`` errors and ``error_count``.
    """
    processed = succeeded = failed = skipped = present = 0
    errors: list[dict[str, Any]] = []
    for result in worker_results:
        if result is None:
            continue
        present += 1
        processed += int(result.get("items_processed") or 0)
        succeeded += int(result.get("items_succeeded") or 0)
        failed += int(result.get("items_failed") or 0)
        skipped += int(result.get("items_skipped") or 0)
        worker_errors = result.get("errors")
        if isinstance(worker_errors, list):
            errors.extend(worker_errors)
    return BatchAggregationResult(
        total_processed=processed,
        total_succeeded=succeeded,
        total_failed=failed,
        total_skipped=skipped,
        batch_count=present,
        success_rate=succeeded / processed if processed > 0 else 0.0,
        errors=errors[:max_errors],
        error_count=len(errors),
    )


# --------------------------------------------------------------------------- execution results


class StepError(BaseModel):
    """Why a step execution failed, as a worker reports it."""

    error_type: str
    message: str
    stack_trace: str | None = None
    retryable: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)


class StepExecutionResult(BaseModel):
    """One execution's outcome in the original worker's submission shape (kept for ported code)."""

    step_uuid: UUID
    task_uuid: UUID
    success: bool
    status: str
    execution_time_ms: int
    result: dict[str, Any] | None = None
    error: StepError | None = None
    worker_id: str | None = None
    correlation_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def success_result(
        cls,
        step_uuid: UUID,
        task_uuid: UUID,
        result: dict[str, Any],
        execution_time_ms: int,
        worker_id: str,
        correlation_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StepExecutionResult:
        """Build a successful result (status ``completed``).

        Args:
            step_uuid: the step that ran.
            task_uuid: its task.
            result: the handler's result.
            execution_time_ms: wall time of the execution.
            worker_id: the worker that ran it.
            correlation_id: the task's correlation id, if known.
            metadata: extra metadata.

        Returns:
            The result.
        """
        return cls(
            step_uuid=step_uuid,
            task_uuid=task_uuid,
            success=True,
            status=ResultStatus.SUCCESS.value,
            execution_time_ms=execution_time_ms,
            result=result,
            worker_id=worker_id,
            correlation_id=correlation_id,
            metadata=dict(metadata or {}),
        )

    @classmethod
    def failure_result(
        cls,
        step_uuid: UUID,
        task_uuid: UUID,
        error: StepError,
        execution_time_ms: int,
        worker_id: str,
        correlation_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StepExecutionResult:
        """Build a failed result; status follows ``error.retryable``.

        Args:
            step_uuid: the step that ran.
            task_uuid: its task.
            error: why it failed.
            execution_time_ms: wall time of the execution.
            worker_id: the worker that ran it.
            correlation_id: the task's correlation id, if known.
            metadata: extra metadata.

        Returns:
            The result, status ``retryable_error`` or ``permanent_error``.
        """
        return cls(
            step_uuid=step_uuid,
            task_uuid=task_uuid,
            success=False,
            status=(
                ResultStatus.RETRYABLE_ERROR.value
                if error.retryable
                else ResultStatus.PERMANENT_ERROR.value
            ),
            execution_time_ms=execution_time_ms,
            error=error,
            worker_id=worker_id,
            correlation_id=correlation_id,
            metadata=dict(metadata or {}),
        )
