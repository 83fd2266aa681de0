"""What a handler returns (python-api.md §3), and how anything else becomes one.

``result_from_value`` (§6.3) and ``result_from_exception`` (§6.4) are the one place where a
return value or a raised exception turns into a ``StepHandlerResult``; the functional DSL and
the runner's ``invoke_handler`` both use them, so class and function handlers fail alike.
"""

from __future__ import annotations

import traceback
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasker.errors import PermanentError, RetryableError, TaskerError
from tasker.errors.error_classifier import get_classifier

__all__ = [
    "ErrorType",
    "ResultStatus",
    "StepHandlerResult",
    "result_from_exception",
    "result_from_value",
]


class ErrorType(StrEnum):
    """Recommended ``error_type`` values; any string is accepted."""

    PERMANENT_ERROR = "permanent_error"
    RETRYABLE_ERROR = "retryable_error"
    VALIDATION_ERROR = "validation_error"
    TIMEOUT = "timeout"
    HANDLER_ERROR = "handler_error"

    @classmethod
    def is_standard(cls, error_type: str) -> bool:
        """Whether ``error_type`` is one of the values above."""
        return error_type in cls._value2member_map_

    @classmethod
    def is_typically_retryable(cls, error_type: str) -> bool:
        """True for ``retryable_error`` and ``timeout`` only; ``retryable`` still decides."""
        return error_type in (cls.RETRYABLE_ERROR.value, cls.TIMEOUT.value)


class ResultStatus(StrEnum):
    """Status words of a stored result document."""

    SUCCESS = "completed"
    FAILURE = "error"
    RETRYABLE_ERROR = "retryable_error"
    PERMANENT_ERROR = "permanent_error"


class StepHandlerResult(BaseModel):
    """The outcome of one handler run: a success with ``result``, or a failure.

    The flag is ``is_success`` because ``success`` is the constructor classmethod; it is read
    and written (``by_alias=True``) as ``"success"``.
    """

    model_config = ConfigDict(populate_by_name=True)

    is_success: bool = Field(alias="success")
    result: dict[str, Any] | None = None
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retryable: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def success(
        cls, result: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> StepHandlerResult:
        """A successful result carrying ``result`` as the step's output."""
        return cls(success=True, result=result, metadata=metadata or {})

    @classmethod
    def failure(
        cls,
        message: str,
        error_type: str = ErrorType.HANDLER_ERROR,
        retryable: bool = True,
        metadata: dict[str, Any] | None = None,
        error_code: str | None = None,
    ) -> StepHandlerResult:
        """A failed result; an ``ErrorType`` member is stored as its string value."""
        return cls(
            success=False,
            error_message=message,
            error_type=str(error_type),
            retryable=retryable,
            metadata=metadata or {},
            error_code=error_code,
        )

    def is_success_result(self) -> bool:
        """Whether the run succeeded (use this or ``is_success``, not ``success``)."""
        return self.is_success

    def is_failure_result(self) -> bool:
        """Whether the run failed."""
        return not self.is_success


def result_from_value(value: object) -> StepHandlerResult:
    """Wrap whatever a handler returned (python-api.md §6.3).

    Args:
        value: a ``StepHandlerResult`` (kept), a dict, a pydantic model (or anything with
            ``model_dump``), ``None``, or any other value (stored under ``"result"``).

    Returns:
        The result to record.
    """
    if isinstance(value, StepHandlerResult):
        return value
    if isinstance(value, dict):
        return StepHandlerResult.success(value)
    if value is None:
        return StepHandlerResult.success({})
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        dumped = dump(mode="json")
        return StepHandlerResult.success(dumped if isinstance(dumped, dict) else {"result": dumped})
    return StepHandlerResult.success({"result": value})


def result_from_exception(exc: BaseException) -> StepHandlerResult:
    """Turn an exception a handler raised into a failure (python-api.md §6.4, ours).

    Tasker's own errors keep their ``metadata``; any other exception is named by its class and
    classified by ``ErrorClassifier``, with the traceback in ``metadata``.

    Args:
        exc: the exception, of any kind (``SystemExit`` and ``KeyboardInterrupt`` included).

    Returns:
        A failure result.
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, TaskerError):
        if isinstance(exc, PermanentError):
            error_type, retryable = ErrorType.PERMANENT_ERROR.value, False
        elif isinstance(exc, RetryableError):
            error_type, retryable = ErrorType.RETRYABLE_ERROR.value, True
        else:
            error_type, retryable = ErrorType.HANDLER_ERROR.value, exc.retryable
        metadata = dict(exc.metadata)
        if exc.retry_after is not None:
            metadata.setdefault("retry_after_seconds", exc.retry_after)
        return StepHandlerResult.failure(
            message, error_type, retryable, metadata=metadata, error_code=exc.error_code
        )
    metadata = {
        "exception_type": type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc)),
    }
    error_code = getattr(exc, "error_code", None)
    return StepHandlerResult.failure(
        message,
        type(exc).__name__,
        get_classifier().retryable(exc),
        metadata=metadata,
        error_code=error_code if isinstance(error_code, str) else None,
    )
