"""Compatibility path ``tasker.step_handler.base``: the handler base class."""

from tasker.worker.handlers import StepHandler, StepHandlerCallResult

__all__ = ["StepHandler", "StepHandlerCallResult"]
