"""Compatibility path ``tasker.step_handler``: handler base classes and the functional DSL."""

from tasker.step_handler import mixins
from tasker.step_handler.base import StepHandler, StepHandlerCallResult
from tasker.step_handler.functional import (
    BatchConfig,
    Decision,
    FunctionalHandler,
    HandlerDecorator,
    api_handler,
    batch_analyzer,
    batch_worker,
    decision_handler,
    depends_on,
    inputs,
    step_handler,
)
from tasker.step_handler.mixins import APIMixin, DecisionMixin
from tasker.worker.api_mixin import ApiHandler, ApiResponse
from tasker.worker.decision import DecisionHandler

__all__ = [
    "APIMixin",
    "ApiHandler",
    "ApiResponse",
    "BatchConfig",
    "Decision",
    "DecisionHandler",
    "DecisionMixin",
    "FunctionalHandler",
    "HandlerDecorator",
    "StepHandler",
    "StepHandlerCallResult",
    "api_handler",
    "batch_analyzer",
    "batch_worker",
    "decision_handler",
    "depends_on",
    "inputs",
    "mixins",
    "step_handler",
]
