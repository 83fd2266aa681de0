"""Compatibility path ``tasker.step_handler.functional``: the decorator DSL (python-api.md §6)."""

from tasker.worker.functional import (
    FunctionalHandler,
    HandlerDecorator,
    depends_on,
    inputs,
    step_handler,
)

# -- specialised decorators (decision_handler, batch_analyzer, batch_worker, api_handler,
# Decision, BatchConfig) are re-exported here from tasker.worker.functional_special by their
# author; add the import below and extend __all__.

__all__ = [
    "FunctionalHandler",
    "HandlerDecorator",
    "depends_on",
    "inputs",
    "step_handler",
]
