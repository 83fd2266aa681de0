"""Compatibility path ``tasker.exceptions``: the original's runtime exceptions (§8.3).

The original rooted these at a second, unrelated ``TaskerError``; here they all live under the
one ``tasker.errors.TaskerError``, so ``except TaskerError`` catches every tasker exception.
"""

from tasker.errors import (
    ConversionError,
    FFIError,
    StepExecutionError,
    TaskerError,
    WorkerAlreadyRunningError,
    WorkerBootstrapError,
    WorkerNotInitializedError,
)

__all__ = [
    "ConversionError",
    "FFIError",
    "StepExecutionError",
    "TaskerError",
    "WorkerAlreadyRunningError",
    "WorkerBootstrapError",
    "WorkerNotInitializedError",
]
