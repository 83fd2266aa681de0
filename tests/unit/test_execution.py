"""invoke_handler's exception mapping (python-api.md §6.4, reliability.md R8.1), the error
classifier (§8.2) and the stored result document (execution.md §10, R8.2)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tasker.errors import (
    NetworkError,
    NotFoundError,
    PermanentError,
    RateLimitError,
    RetryableError,
    StepExecutionError,
    TaskerError,
    ValidationError,
)
from tasker.errors import TimeoutError as StepTimeoutError
from tasker.errors.error_classifier import (
    ErrorClassifier,
    get_classifier,
    is_permanent,
    is_retryable,
)
from tasker.worker.context import StepContext
from tasker.worker.execution import (
    handler_not_found_result,
    invoke_handler,
    is_checkpoint_yield,
    result_document,
)
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COMPLETED = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)


def context() -> StepContext:
    return StepContext(task_uuid=uuid.uuid4(), step_uuid=uuid.uuid4(), handler_name="t")


class Raising(StepHandler):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def call(self, context: StepContext) -> StepHandlerResult:
        raise self.exc


class Returning(StepHandler):
    def __init__(self, value: Any) -> None:
        self.value = value

    def call(self, context: StepContext) -> Any:
        return self.value


class AsyncReturning(StepHandler):
    async def call(self, context: StepContext) -> StepHandlerResult:
        await asyncio.sleep(0)
        return self.success({"loop": id(asyncio.get_running_loop())})


class AsyncRaising(StepHandler):
    async def call(self, context: StepContext) -> StepHandlerResult:
        raise NetworkError("socket closed")


class UnknownProblem(Exception):
    pass


class SelfDescribing(Exception):
    retryable = False
    error_code = "OWN_CODE"


# -- exception mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "error_type", "retryable"),
    [
        (PermanentError("p"), "permanent_error", False),
        (ValidationError("v"), "permanent_error", False),
        (NotFoundError("n"), "permanent_error", False),
        (RetryableError("r"), "retryable_error", True),
        (NetworkError("n"), "retryable_error", True),
        (StepTimeoutError("t"), "retryable_error", True),
        (TaskerError("t", retryable=False), "handler_error", False),
        (StepExecutionError("s"), "handler_error", True),
        (ValueError("v"), "ValueError", False),
        (KeyError("k"), "KeyError", False),
        (TypeError("t"), "TypeError", False),
        (NotImplementedError("n"), "NotImplementedError", False),
        (ConnectionError("c"), "ConnectionError", True),
        (ConnectionResetError("c"), "ConnectionResetError", True),
        (TimeoutError("t"), "TimeoutError", True),
        (OSError("o"), "OSError", True),
        (UnknownProblem("u"), "UnknownProblem", True),
        (RuntimeError("r"), "RuntimeError", True),
        (SelfDescribing("s"), "SelfDescribing", False),
        (SystemExit(3), "SystemExit", True),
        (KeyboardInterrupt(), "KeyboardInterrupt", True),
    ],
)
def test_raised_exceptions_become_failures(
    exc: BaseException, error_type: str, retryable: bool
) -> None:
    result = invoke_handler(Raising(exc), context())

    assert result.is_success is False
    assert result.error_type == error_type
    assert result.retryable is retryable


def test_foreign_exception_metadata_has_type_and_traceback() -> None:
    result = invoke_handler(Raising(ValueError("amount must be positive")), context())

    assert result.error_message == "amount must be positive"
    assert result.metadata["exception_type"] == "ValueError"
    assert "Traceback" in result.metadata["traceback"]
    assert "ValueError: amount must be positive" in result.metadata["traceback"]
    assert set(result.metadata) == {"exception_type", "traceback"}


def test_foreign_exception_error_code_is_copied() -> None:
    result = invoke_handler(Raising(SelfDescribing("mine")), context())

    assert result.error_code == "OWN_CODE"


def test_empty_message_falls_back_to_the_class_name() -> None:
    assert invoke_handler(Raising(KeyboardInterrupt()), context()).error_message == (
        "KeyboardInterrupt"
    )
    assert invoke_handler(Raising(SystemExit(3)), context()).error_message == "3"


def test_tasker_error_keeps_its_metadata_code_and_retry_after() -> None:
    exc = RateLimitError(
        "slow down", error_code="RATE", retry_after=30, metadata={"quota": 5}, context={"api": "x"}
    )

    result = invoke_handler(Raising(exc), context())

    assert result.error_code == "RATE"
    assert result.error_message == "slow down"
    assert result.metadata == {
        "quota": 5,
        "api": "x",
        "error_code": "RATE",
        "retry_after": 30,
        "retry_after_seconds": 30,
    }


def test_retry_after_set_after_construction_still_reaches_metadata() -> None:
    exc = RetryableError("later")
    exc.retry_after = 12

    result = invoke_handler(Raising(exc), context())

    assert result.metadata["retry_after_seconds"] == 12


# -- return values and async -------------------------------------------------------------------


class Summary(BaseModel):
    count: int


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"a": 1}, {"a": 1}), (None, {}), (Summary(count=2), {"count": 2}), (3.5, {"result": 3.5})],
)
def test_class_handler_return_values_are_wrapped(value: Any, expected: dict[str, Any]) -> None:
    result = invoke_handler(Returning(value), context())

    assert result.is_success is True
    assert result.result == expected


def test_async_handler_runs_on_a_fresh_loop_without_one() -> None:
    result = invoke_handler(AsyncReturning(), context())

    assert result.is_success is True
    assert isinstance((result.result or {})["loop"], int)


def test_async_handler_runs_on_the_given_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        first = invoke_handler(AsyncReturning(), context(), loop)
        second = invoke_handler(AsyncReturning(), context(), loop)
    finally:
        loop.close()

    assert (first.result or {})["loop"] == id(loop)
    assert (second.result or {})["loop"] == id(loop)


def test_async_handler_exceptions_are_mapped() -> None:
    result = invoke_handler(AsyncRaising(), context())

    assert (result.error_type, result.retryable) == ("retryable_error", True)


def test_async_handler_inside_a_running_loop_fails_cleanly() -> None:
    async def main() -> StepHandlerResult:
        return invoke_handler(AsyncReturning(), context())

    result = asyncio.run(main())

    assert result.is_success is False
    assert result.error_type == "RuntimeError"


def test_a_handler_without_call_is_a_failure_not_a_crash() -> None:
    result = invoke_handler(object(), context())

    assert (result.error_type, result.retryable) == ("AttributeError", False)


def test_handler_not_found_result() -> None:
    result = handler_not_found_result("orders.Missing")

    assert (result.is_success, result.error_type, result.retryable) == (
        False,
        "handler_not_found",
        False,
    )
    assert result.error_message == "Handler not found: orders.Missing"


# -- classifier --------------------------------------------------------------------------------


def test_classifier_explains_its_decision() -> None:
    classifier = ErrorClassifier()

    assert classifier.classify(SelfDescribing()) == {
        "error_type": "SelfDescribing",
        "retryable": False,
        "classification": "explicit_attribute",
    }
    assert classifier.classify(KeyError("k"))["classification"] == "permanent_class"
    assert classifier.classify(BrokenPipeError())["classification"] == "retryable_class"
    assert classifier.classify(UnknownProblem())["classification"] == "default"
    assert classifier.permanent(AttributeError()) is True
    assert classifier.permanent(InterruptedError()) is False


def test_classifier_default_decides_unknown_exceptions_only() -> None:
    strict = ErrorClassifier(default_retryable=False)

    assert strict.retryable(UnknownProblem()) is False
    assert strict.retryable(BlockingIOError()) is True
    assert strict.retryable(RetryableError("r")) is True


def test_module_functions_use_the_default_classifier() -> None:
    assert get_classifier() is get_classifier()
    assert is_retryable(ConnectionError()) is True
    assert is_permanent(ImportError()) is True
    assert is_permanent(UnknownProblem()) is False


# -- result document ---------------------------------------------------------------------------


def document(result: StepHandlerResult, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "step_uuid": "s-1",
        "execution_time_ms": 12.5,
        "worker_id": "w-1",
        "started_at": STARTED,
        "completed_at": COMPLETED,
    }
    arguments.update(overrides)
    return result_document(result, **arguments)


TIMING = {
    "execution_time_ms": 12.5,
    "worker_id": "w-1",
    "started_at": "2026-01-02T03:04:05+00:00",
    "completed_at": "2026-01-02T03:04:06+00:00",
}


def test_success_document() -> None:
    doc = document(StepHandlerResult.success({"total": 3}, metadata={"source": "api"}))

    assert doc == {
        "step_uuid": "s-1",
        "success": True,
        "status": "completed",
        "result": {"total": 3},
        "error": None,
        "metadata": {**TIMING, "retryable": True, "custom": {"source": "api"}},
    }


def test_success_document_with_no_result_stores_an_empty_object() -> None:
    result = StepHandlerResult.model_validate({"success": True, "result": None})

    assert document(result)["result"] == {}


def test_retryable_failure_document() -> None:
    result = StepHandlerResult.failure(
        "gateway timeout",
        error_type="timeout",
        retryable=True,
        metadata={"status_code": 504, "retry_after_seconds": 30, "retryable": "ignored"},
        error_code="GW_TIMEOUT",
    )

    assert document(result) == {
        "step_uuid": "s-1",
        "success": False,
        "status": "retryable_error",
        "result": {},
        "error": {
            "error_type": "timeout",
            "message": "gateway timeout",
            "retryable": True,
            "status_code": 504,
            "context": {},
            "metadata": {"status_code": 504, "retry_after_seconds": 30, "retryable": "ignored"},
        },
        "metadata": {
            "status_code": 504,
            "retry_after_seconds": 30,
            "retryable": True,
            "error_type": "timeout",
            "error_code": "GW_TIMEOUT",
            **TIMING,
        },
    }


def test_permanent_failure_document_fills_missing_type_and_message() -> None:
    result = StepHandlerResult.model_validate({"success": False, "retryable": False})

    doc = document(result)

    assert doc["status"] == "permanent_error"
    assert doc["error"]["error_type"] == "unknown"
    assert doc["error"]["message"] == "Unknown error"
    assert doc["metadata"]["retryable"] is False
    assert "backtrace" not in doc["error"]


def test_raised_exception_document_carries_the_backtrace() -> None:
    result = invoke_handler(Raising(ValueError("bad")), context())

    doc = document(result)

    assert doc["status"] == "permanent_error"
    assert doc["error"]["backtrace"] == result.metadata["traceback"]
    assert doc["metadata"]["exception_type"] == "ValueError"


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "Object of type datetime is not JSON"),
        ({"ratio": math.nan}, "Out of range float values are not JSON compliant"),
        ({"ids": {1, 2}}, "Object of type set is not JSON"),
    ],
)
def test_non_json_result_becomes_a_permanent_invalid_result(
    payload: dict[str, Any], detail: str
) -> None:
    doc = document(StepHandlerResult.success(payload))

    assert doc["success"] is False
    assert doc["status"] == "permanent_error"
    assert doc["error"]["error_type"] == "invalid_result"
    assert doc["error"]["retryable"] is False
    assert doc["error"]["message"].startswith("result is not JSON-serialisable: ")
    assert detail in doc["error"]["message"]
    assert doc["metadata"]["retryable"] is False
    json.dumps(doc, allow_nan=False)  # the replacement itself is storable


def test_non_json_failure_metadata_is_caught_too() -> None:
    result = StepHandlerResult.failure("x", metadata={"obj": object()})

    assert document(result)["error"]["error_type"] == "invalid_result"


def test_oversized_result_becomes_a_permanent_invalid_result() -> None:
    result = StepHandlerResult.success({"blob": "x" * 500})
    size = len(json.dumps(document(result)).encode("utf-8"))

    doc = document(result, max_bytes=size - 1)

    assert doc["error"]["error_type"] == "invalid_result"
    assert doc["error"]["message"] == f"result is too large: {size} bytes > {size - 1}"
    assert doc["status"] == "permanent_error"
    assert document(result, max_bytes=size)["status"] == "completed"


def test_checkpoint_yield_needs_metadata_flag_true() -> None:
    yielded = StepHandlerResult.success({"type": "checkpoint_yield"}, {"checkpoint_yield": True})

    assert is_checkpoint_yield(yielded) is True
    assert is_checkpoint_yield(StepHandlerResult.success({}, {"checkpoint_yield": "yes"})) is False
    assert is_checkpoint_yield(StepHandlerResult.success({})) is False
