"""Compatibility path ``tasker.types`` (python-api.md §1, §11): the handler-facing models.

Ported handlers import ``from tasker.types import StepContext, StepHandlerResult``; the code
lives in ``tasker.worker``.
"""

from tasker.worker.context import FfiStepEvent, StepContext
from tasker.worker.results import ErrorType, ResultStatus, StepHandlerResult

# -- batch and decision models (python-api.md §11) --------------------------------------------
# Re-exported here from tasker.worker.batch and tasker.worker.decision by their author; add the
# imports below and extend __all__.

__all__ = [
    "ErrorType",
    "FfiStepEvent",
    "ResultStatus",
    "StepContext",
    "StepHandlerResult",
]
