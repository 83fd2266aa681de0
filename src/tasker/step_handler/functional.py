"""Compatibility path ``tasker.step_handler.functional``: the decorator DSL (python-api.md §6)."""

from tasker.worker.functional import (
    FunctionalHandler,
    HandlerDecorator,
    depends_on,
    inputs,
    step_handler,
)
from tasker.worker.functional_special import (
    BatchConfig,
    Decision,
    api_handler,
    batch_analyzer,
    batch_worker,
    decision_handler,
)

__all__ = [
    "BatchConfig",
    "Decision",
    "FunctionalHandler",
    "HandlerDecorator",
    "api_handler",
    "batch_analyzer",
    "batch_worker",
    "decision_handler",
    "depends_on",
    "inputs",
    "step_handler",
]
