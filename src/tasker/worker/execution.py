"""Run one handler and turn its outcome into the stored result document.

The runner calls ``invoke_handler`` (never raises: whatever the handler does becomes a result,
reliability.md R8.1), then ``result_document`` (the JSON the engine stores and dependents read,
execution.md §10), which also refuses results that cannot be stored (R8.2).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from tasker.worker.context import StepContext
from tasker.worker.results import (
    ResultStatus,
    StepHandlerResult,
    result_from_exception,
    result_from_value,
)

__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "handler_not_found_result",
    "invoke_handler",
    "is_checkpoint_yield",
    "result_document",
]

DEFAULT_MAX_RESULT_BYTES = 1_048_576
"""Largest stored result document (1 MiB, serialised)."""

T = TypeVar("T")


async def _await(pending: Awaitable[T]) -> T:
    return await pending


def _run(pending: Awaitable[Any], loop: asyncio.AbstractEventLoop | None) -> Any:
    """Drive an awaitable to completion on ``loop``, or on a fresh loop."""
    coroutine = _await(pending)
    try:
        if loop is None:
            return asyncio.run(coroutine)
        return loop.run_until_complete(coroutine)
    finally:
        # If the loop refused to start (already running, closed), neither coroutine ran:
        # close them so they do not warn "never awaited". A no-op on finished coroutines.
        coroutine.close()
        if inspect.iscoroutine(pending):
            pending.close()


def invoke_handler(
    handler: Any, context: StepContext, loop: asyncio.AbstractEventLoop | None = None
) -> StepHandlerResult:
    """Run ``handler.call(context)`` and return its result; never raises.

    Coroutines (``async def call``) run on ``loop`` or, without one, on a fresh event loop.
    Return values are wrapped (python-api.md §6.3); any raised exception, ``SystemExit`` and
    ``KeyboardInterrupt`` included, becomes a failure (§6.4).

    Args:
        handler: a resolved handler (anything with ``call``).
        context: the step's context.
        loop: the event loop the runner owns for this thread, if any.

    Returns:
        The handler's result.
    """
    try:
        value = handler.call(context)
        if inspect.isawaitable(value):
            value = _run(value, loop)
        return result_from_value(value)
    except BaseException as exc:  # R8.1: the worker survives whatever the handler raises
        return result_from_exception(exc)


def handler_not_found_result(callable_name: str) -> StepHandlerResult:
    """The permanent failure recorded when no handler answers to ``callable_name``."""
    return StepHandlerResult.failure(
        f"Handler not found: {callable_name}", error_type="handler_not_found", retryable=False
    )


def is_checkpoint_yield(result: StepHandlerResult) -> bool:
    """Whether the handler yielded a checkpoint instead of finishing (python-api.md §5.4)."""
    return result.metadata.get("checkpoint_yield") is True


def result_document(
    result: StepHandlerResult,
    *,
    step_uuid: str,
    execution_time_ms: float,
    worker_id: str,
    started_at: datetime,
    completed_at: datetime,
    max_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> dict[str, Any]:
    """The JSON document stored as the step's result (execution.md §10, python-api.md §3).

    A result that is not JSON-serialisable (NaN included) or whose document exceeds
    ``max_bytes`` is replaced by a permanent ``invalid_result`` failure (reliability.md R8.2).

    Args:
        result: what the handler returned.
        step_uuid: the step that ran.
        execution_time_ms: how long the handler ran.
        worker_id: the worker that ran it.
        started_at: when the handler started (tz-aware UTC).
        completed_at: when it finished.
        max_bytes: size limit of the serialised document.

    Returns:
        The document, ready for ``json.dumps``.
    """
    timing = {
        "execution_time_ms": execution_time_ms,
        "worker_id": worker_id,
        "started_at": started_at.isoformat(),
        "completed_at": completed_at.isoformat(),
    }
    document = _document(result, step_uuid, timing)
    try:
        encoded = json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problem = f"result is not JSON-serialisable: {exc}"
    else:
        size = len(encoded.encode("utf-8"))
        if size <= max_bytes:
            return document
        problem = f"result is too large: {size} bytes > {max_bytes}"
    invalid = StepHandlerResult.failure(problem, error_type="invalid_result", retryable=False)
    return _document(invalid, step_uuid, timing)


def _document(result: StepHandlerResult, step_uuid: str, timing: dict[str, Any]) -> dict[str, Any]:
    handler_metadata = dict(result.metadata)
    if result.is_success:
        return {
            "step_uuid": step_uuid,
            "success": True,
            "status": ResultStatus.SUCCESS.value,
            "result": {} if result.result is None else result.result,
            "error": None,
            "metadata": {**timing, "retryable": result.retryable, "custom": handler_metadata},
        }
    error_type = result.error_type or "unknown"
    error: dict[str, Any] = {
        "error_type": error_type,
        "message": "Unknown error" if result.error_message is None else result.error_message,
        "retryable": result.retryable,
        "context": {},
        "metadata": handler_metadata,
    }
    if "status_code" in handler_metadata:
        error["status_code"] = handler_metadata["status_code"]
    if "traceback" in handler_metadata:
        error["backtrace"] = handler_metadata["traceback"]
    status = ResultStatus.RETRYABLE_ERROR if result.retryable else ResultStatus.PERMANENT_ERROR
    return {
        "step_uuid": step_uuid,
        "success": False,
        "status": status.value,
        "result": {} if result.result is None else result.result,
        "error": error,
        "metadata": {
            **handler_metadata,
            "retryable": result.retryable,
            "error_type": error_type,
            "error_code": result.error_code,
            **timing,
        },
    }
