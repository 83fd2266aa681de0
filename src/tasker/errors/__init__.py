"""Every exception tasker raises, under one root: ``TaskerError``.

Two families share the root. Engine errors (templates, store, state machine, lookups) say what
went wrong and where. Handler errors (``RetryableError``, ``PermanentError`` and their
subclasses) are raised by step handlers to steer retries; their constructor keeps the original
Python worker's signature so ported handlers work unchanged (python-api.md §8.1).

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BusinessLogicError",
    "ConfigError",
    "ConfigurationError",
    "ConversionError",
    "DuplicateTask",
    "FFIError",
    "HandlerNotFound",
    "IllegalTransition",
    "InvalidContext",
    "MigrationRequired",
    "NetworkError",
    "NotFound",
    "NotFoundError",
    "PassMispredicted",
    "PermanentError",
    "RateLimitError",
    "ResolutionError",
    "ResolverNotFoundError",
    "ResourceContentionError",
    "RetryableError",
    "ServiceUnavailableError",
    "StaleClaim",
    "StepExecutionError",
    "StepNotFound",
    "StepTimeoutError",
    "StepValidationError",
    "StoreError",
    "StoreUnavailable",
    "TaskNotFound",
    "TaskerError",
    "TemplateError",
    "TemplateNotFound",
    "TimeoutError",
    "ValidationError",
    "WorkerAlreadyRunningError",
    "WorkerBootstrapError",
    "WorkerNotInitializedError",
]


class TaskerError(Exception):
    """Root of every tasker exception; ``except TaskerError`` catches them all.

    Args:
        message: what went wrong.
        retryable: overrides the class default (``True``) when given.
        metadata: free-form details; ``error_code``, ``retry_after`` and ``context`` keys are
            merged into it.
        error_code: an application code such as ``"PAYMENT_DECLINED"``.
        retry_after: seconds the caller should wait before retrying.
        context: extra key/values merged into ``metadata``.
    """

    retryable_default: bool = True

    def __init__(
        self,
        message: str = "",
        *,
        retryable: bool | None = None,
        metadata: dict[str, Any] | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.retryable_default if retryable is None else retryable
        self.error_code = error_code
        self.retry_after = retry_after
        merged: dict[str, Any] = dict(metadata or {})
        if error_code is not None:
            merged["error_code"] = error_code
        if retry_after is not None:
            merged["retry_after"] = retry_after
            merged.setdefault("retry_after_seconds", retry_after)
        if context:
            merged.update(context)
        self.metadata = merged

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The error as the original worker serialised it."""
        return {
            "error_type": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
            "metadata": self.metadata,
        }


# ---------------------------------------------------------------------------------------------
# Engine errors: raised by tasker itself. Not retryable by default (they describe bad input or
# a broken environment, not a transient condition).
# ---------------------------------------------------------------------------------------------


class _EngineError(TaskerError):
    retryable_default = False


class ConfigError(_EngineError):
    """A setting is invalid; the message names the key and where it came from."""


class TemplateError(_EngineError):
    """A task template is invalid; one line per problem, each naming file, step and field.

    Args:
        problems: the individual problem lines; ``str(error)`` joins them with newlines.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InvalidContext(_EngineError):
    """A task context (or tags) is not an acceptable JSON object; nothing was written."""


class StoreError(_EngineError):
    """The database refused or failed an operation."""


class StoreUnavailable(StoreError):
    """The database cannot be reached; retry later."""

    retryable_default = True


class PassMispredicted(StoreError):
    """A prediction the store checks at commit did not hold (ADR 0023): an orchestration
    pass decided in advance, or a created task predicted new. The transaction was rolled
    back; redo it without predicting."""


class MigrationRequired(StoreError):
    """The database schema is older than this version of tasker; run the migrations."""


class IllegalTransition(_EngineError):
    """A state change that the task or step state machine does not allow; nothing was written."""


class StaleClaim(_EngineError):
    """A worker wrote with a claim that is no longer current (lease expired or step moved on)."""


class NotFound(_EngineError):
    """A task, step or template that does not exist."""


class TaskNotFound(NotFound):
    """No task has this uuid."""


class StepNotFound(NotFound):
    """No step has this uuid (in this task)."""


class TemplateNotFound(NotFound):
    """No template is registered under this namespace, name and version."""


class DuplicateTask(_EngineError):
    """A task with the same identity already exists; ``task_uuid`` names it."""

    def __init__(self, message: str, *, task_uuid: str) -> None:
        super().__init__(message)
        self.task_uuid = task_uuid


class HandlerNotFound(_EngineError):
    """No registered or importable handler answers to a template's ``handler.callable``."""


class ConversionError(_EngineError):
    """A value could not be converted between Python and the stored JSON form."""


class ResolutionError(_EngineError):
    """A handler was found for a step but could not be built (import or constructor failed)."""


class ResolverNotFoundError(ResolutionError):
    """A step's ``handler.resolver`` hint names a resolver the chain does not have."""


class WorkerNotInitializedError(_EngineError):
    """Kept for ported code: a worker operation ran before the worker was set up."""


class WorkerBootstrapError(_EngineError):
    """The worker could not start (templates, handlers or store unavailable)."""


class WorkerAlreadyRunningError(_EngineError):
    """A second worker was started in a process that already runs one."""


# ---------------------------------------------------------------------------------------------
# Handler errors (python-api.md §8.1): raised by step handlers to say whether to retry.
# ---------------------------------------------------------------------------------------------


class RetryableError(TaskerError):
    """A transient failure: the step is retried while attempts remain."""

    retryable_default = True


class TimeoutError(RetryableError):
    """An operation timed out; retried."""


class NetworkError(RetryableError):
    """A network operation failed; retried."""


class RateLimitError(RetryableError):
    """A remote service asked us to slow down; retried, honouring ``retry_after``."""


class ServiceUnavailableError(RetryableError):
    """A remote service is unavailable; retried."""


class ResourceContentionError(RetryableError):
    """A resource was busy (lock, quota); retried."""


class PermanentError(TaskerError):
    """A failure that retrying cannot fix: the step fails at once."""

    retryable_default = False


class ValidationError(PermanentError):
    """The step's input is invalid."""


class NotFoundError(PermanentError):
    """Something the step needs does not exist."""


class AuthenticationError(PermanentError):
    """Credentials were refused."""


class AuthorizationError(PermanentError):
    """The credentials lack a permission."""


class ConfigurationError(PermanentError):
    """The step or handler is misconfigured."""


class BusinessLogicError(PermanentError):
    """A business rule forbids the operation (e.g. payment declined)."""


class FFIError(TaskerError):
    """Kept for ported code: the original raised it across its Rust boundary."""


class StepExecutionError(TaskerError):
    """A generic step failure with an explicit ``error_type``.

    Args:
        message: what went wrong.
        error_type: the error type recorded on the step.
        retryable: whether the step may be retried.
    """

    def __init__(
        self, message: str, error_type: str = "step_execution_error", retryable: bool = True
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.error_type = error_type


StepTimeoutError = TimeoutError
StepValidationError = ValidationError

# Keep a handle on the builtin for code in this package that needs it despite the shadowing.
BuiltinTimeoutError = builtins.TimeoutError
