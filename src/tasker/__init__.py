"""tasker: workflow orchestration for Python teams.

Handler authors import the names of python-api.md §12 from here (a handler written for the
original ports by renaming ``tasker_core`` to ``tasker``). Applications use ``Tasker`` (the
embedded runtime), ``Settings`` and the error root ``TaskerError``.
"""

from __future__ import annotations

from tasker.config import Settings
from tasker.domain.model import TaskRequest
from tasker.errors import (
    AuthenticationError,
    AuthorizationError,
    BusinessLogicError,
    ConfigurationError,
    DuplicateTask,
    NetworkError,
    NotFoundError,
    PermanentError,
    RateLimitError,
    ResourceContentionError,
    RetryableError,
    ServiceUnavailableError,
    StepTimeoutError,
    StepValidationError,
    TaskerError,
)
from tasker.errors.error_classifier import (
    ErrorClassifier,
    get_classifier,
    is_permanent,
    is_retryable,
)
from tasker.runtime import StepView, Tasker, TaskView
from tasker.worker.api_mixin import ApiHandler, ApiResponse
from tasker.worker.batch import Batchable, BatchAggregationScenario, BatchWorkerConfig
from tasker.worker.batch_types import (
    BatchAnalyzerOutcome,
    BatchWorkerContext,
    BatchWorkerOutcome,
    CursorConfig,
)
from tasker.worker.context import StepContext
from tasker.worker.decision import DecisionHandler, DecisionPointOutcome, DecisionType
from tasker.worker.handlers import HandlerRegistry, StepHandler
from tasker.worker.results import ErrorType, ResultStatus, StepHandlerResult

__version__ = "0.1.0"

__all__ = [
    "ApiHandler",
    "ApiResponse",
    "AuthenticationError",
    "AuthorizationError",
    "BatchAggregationScenario",
    "BatchAnalyzerOutcome",
    "BatchWorkerConfig",
    "BatchWorkerContext",
    "BatchWorkerOutcome",
    "Batchable",
    "BusinessLogicError",
    "ConfigurationError",
    "CursorConfig",
    "DecisionHandler",
    "DecisionPointOutcome",
    "DecisionType",
    "DuplicateTask",
    "ErrorClassifier",
    "ErrorType",
    "HandlerRegistry",
    "NetworkError",
    "NotFoundError",
    "PermanentError",
    "RateLimitError",
    "ResourceContentionError",
    "ResultStatus",
    "RetryableError",
    "ServiceUnavailableError",
    "Settings",
    "StepContext",
    "StepHandler",
    "StepHandlerResult",
    "StepTimeoutError",
    "StepValidationError",
    "StepView",
    "TaskRequest",
    "TaskView",
    "Tasker",
    "TaskerError",
    "get_classifier",
    "is_permanent",
    "is_retryable",
]
