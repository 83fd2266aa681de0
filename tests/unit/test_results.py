"""StepHandlerResult, ErrorType, ResultStatus (python-api.md §3), return wrapping (§6.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from tasker.worker.results import ErrorType, ResultStatus, StepHandlerResult, result_from_value


def test_success_builds_a_success() -> None:
    result = StepHandlerResult.success({"n": 1}, metadata={"m": 2})

    assert result.is_success is True
    assert result.result == {"n": 1}
    assert result.metadata == {"m": 2}
    assert result.error_message is None
    assert result.error_type is None
    assert result.is_success_result() is True
    assert result.is_failure_result() is False


def test_failure_defaults() -> None:
    result = StepHandlerResult.failure("boom")

    assert result.is_success is False
    assert result.error_message == "boom"
    assert result.error_type == "handler_error"
    assert result.retryable is True
    assert result.metadata == {}
    assert result.error_code is None
    assert result.result is None
    assert result.is_failure_result() is True
    assert result.is_success_result() is False


def test_failure_stores_error_type_members_as_plain_strings() -> None:
    result = StepHandlerResult.failure(
        "bad", error_type=ErrorType.VALIDATION_ERROR, retryable=False, error_code="BAD_INPUT"
    )

    assert result.error_type == "validation_error"
    assert type(result.error_type) is str
    assert json.loads(result.model_dump_json())["error_type"] == "validation_error"
    assert (result.retryable, result.error_code) == (False, "BAD_INPUT")


def test_is_success_is_read_and_written_as_success() -> None:
    by_alias = StepHandlerResult.model_validate({"success": True, "result": {"a": 1}})
    by_name = StepHandlerResult.model_validate({"is_success": False})

    assert by_alias.is_success is True
    assert by_name.is_success is False
    dumped = by_alias.model_dump(by_alias=True)
    assert dumped["success"] is True
    assert "is_success" not in dumped
    assert (
        StepHandlerResult.model_validate_json(by_alias.model_dump_json(by_alias=True)) == by_alias
    )


def test_success_is_the_classmethod_not_the_flag() -> None:
    result = StepHandlerResult.failure("x")

    assert callable(result.success)
    assert result.is_success is False


def test_metadata_default_is_not_shared() -> None:
    first = StepHandlerResult.model_validate({"success": True})
    second = StepHandlerResult.model_validate({"success": True})
    first.metadata["k"] = 1

    assert second.metadata == {}
    assert first.retryable is True


def test_error_type_values_and_helpers() -> None:
    assert [member.value for member in ErrorType] == [
        "permanent_error",
        "retryable_error",
        "validation_error",
        "timeout",
        "handler_error",
    ]
    assert isinstance(ErrorType.TIMEOUT, str)
    assert ErrorType.is_standard("timeout") is True
    assert ErrorType.is_standard("ValueError") is False
    assert ErrorType.is_typically_retryable("retryable_error") is True
    assert ErrorType.is_typically_retryable(ErrorType.TIMEOUT) is True
    assert ErrorType.is_typically_retryable("handler_error") is False
    assert ErrorType.is_typically_retryable("permanent_error") is False


def test_result_status_values() -> None:
    assert {member.name: member.value for member in ResultStatus} == {
        "SUCCESS": "completed",
        "FAILURE": "error",
        "RETRYABLE_ERROR": "retryable_error",
        "PERMANENT_ERROR": "permanent_error",
    }


class Receipt(BaseModel):
    amount: float
    currency: str = "EUR"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        (None, {}),
        (Receipt(amount=2.5), {"amount": 2.5, "currency": "EUR"}),
        (42, {"result": 42}),
        ("text", {"result": "text"}),
        ([1, 2], {"result": [1, 2]}),
    ],
)
def test_return_values_are_wrapped_as_success(value: Any, expected: dict[str, Any]) -> None:
    result = result_from_value(value)

    assert result.is_success is True
    assert result.result == expected


def test_a_returned_result_passes_through_unchanged() -> None:
    failure = StepHandlerResult.failure("no", retryable=False)

    assert result_from_value(failure) is failure


def test_a_returned_model_class_is_not_dumped() -> None:
    result = result_from_value(Receipt)

    assert result.result == {"result": Receipt}
