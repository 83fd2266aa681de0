"""Compatibility path ``tasker.types`` (python-api.md §1, §11): the handler-facing models.

Ported handlers import ``from tasker.types import StepContext, StepHandlerResult``; the code
lives in ``tasker.worker``.
"""

from tasker.worker.batch_types import (
    BatchAggregationResult,
    BatchAnalyzerOutcome,
    BatchMetadata,
    BatchProcessingOutcome,
    BatchWorkerContext,
    BatchWorkerOutcome,
    CreateBatchesOutcome,
    CursorConfig,
    FailureStrategy,
    NoBatchesOutcome,
    RustBatchWorkerInputs,
    RustCursorConfig,
    StepError,
    StepExecutionResult,
    aggregate_batch_results,
    create_batches,
    no_batches,
)
from tasker.worker.context import FfiStepEvent, StepContext
from tasker.worker.decision import DecisionPointOutcome, DecisionType
from tasker.worker.results import ErrorType, ResultStatus, StepHandlerResult

__all__ = [
    "BatchAggregationResult",
    "BatchAnalyzerOutcome",
    "BatchMetadata",
    "BatchProcessingOutcome",
    "BatchWorkerContext",
    "BatchWorkerOutcome",
    "CreateBatchesOutcome",
    "CursorConfig",
    "DecisionPointOutcome",
    "DecisionType",
    "ErrorType",
    "FailureStrategy",
    "FfiStepEvent",
    "NoBatchesOutcome",
    "ResultStatus",
    "RustBatchWorkerInputs",
    "RustCursorConfig",
    "StepContext",
    "StepError",
    "StepExecutionResult",
    "StepHandlerResult",
    "aggregate_batch_results",
    "create_batches",
    "no_batches",
]
