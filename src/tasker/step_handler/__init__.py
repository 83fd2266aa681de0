"""Compatibility path ``tasker.step_handler``: handler base classes and the functional DSL."""

from tasker.step_handler.base import StepHandler, StepHandlerCallResult
from tasker.step_handler.functional import (
    FunctionalHandler,
    HandlerDecorator,
    depends_on,
    inputs,
    step_handler,
)

# -- specialised handlers (ApiHandler, ApiResponse, DecisionHandler, mixins) and the
# specialised decorators are re-exported here by their author; extend __all__ with them.

__all__ = [
    "FunctionalHandler",
    "HandlerDecorator",
    "StepHandler",
    "StepHandlerCallResult",
    "depends_on",
    "inputs",
    "step_handler",
]
