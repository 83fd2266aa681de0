"""The functional DSL (python-api.md §6): decorators, injection, return wrapping, failures."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from tasker.errors import PermanentError, RateLimitError, TaskerError
from tasker.worker.context import StepContext
from tasker.worker.execution import invoke_handler
from tasker.worker.functional import (
    FunctionalHandler,
    depends_on,
    inputs,
    make_handler_class,
    step_handler,
)
from tasker.worker.handlers import HandlerRegistry, StepHandler
from tasker.worker.results import StepHandlerResult


def make_context(
    input_data: dict[str, Any] | None = None, deps: dict[str, Any] | None = None
) -> StepContext:
    return StepContext(
        task_uuid=uuid.uuid4(),
        step_uuid=uuid.uuid4(),
        handler_name="fn",
        input_data=input_data or {},
        dependency_results={name: {"result": value} for name, value in (deps or {}).items()},
    )


def run(func: Any, ctx: StepContext) -> StepHandlerResult:
    return invoke_handler(func._handler_class(), ctx)


# -- decorators --------------------------------------------------------------------------------


def test_step_handler_returns_the_function_with_a_handler_class() -> None:
    @step_handler("greet", version="2.0.0")
    def greet(name: str = "x") -> dict[str, Any]:
        """Say hello."""
        return {"hello": name}

    cls = greet._handler_class  # type: ignore[attr-defined]
    assert greet(name="y") == {"hello": "y"}
    assert issubclass(cls, StepHandler)
    assert issubclass(cls, FunctionalHandler)
    assert cls.handler_name == "greet"
    assert cls.handler_version == "2.0.0"
    assert cls.__name__ == "greet"
    assert cls.__qualname__ == greet.__qualname__
    assert cls.__doc__ == "Say hello."
    assert cls.__module__ == __name__
    assert cls().name == "greet"


def test_step_handler_without_a_name_is_a_type_error() -> None:
    def plain() -> None:
        return None

    with pytest.raises(TypeError, match="needs a handler name"):
        step_handler(plain)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", [3, ("step",), ("step", dict), (1, BaseModel)])
def test_depends_on_rejects_malformed_specs(spec: Any) -> None:
    with pytest.raises(TypeError, match=r"depends_on\(x=\.\.\.\)"):
        depends_on(x=spec)


def test_inputs_rejects_mixed_arguments() -> None:
    class Model(BaseModel):
        a: int

    with pytest.raises(TypeError, match="inputs"):
        inputs("a", Model)


# -- injection ---------------------------------------------------------------------------------


def test_dependencies_inputs_and_context_are_injected() -> None:
    seen: dict[str, Any] = {}

    @step_handler("inject")
    @depends_on(order="validate_order", missing="never_ran")
    @inputs("customer", "absent")
    def handler(order: Any, missing: Any, customer: Any, absent: Any, context: Any) -> None:
        seen.update(order=order, missing=missing, customer=customer, absent=absent, ctx=context)

    ctx = make_context({"customer": "c-1"}, {"validate_order": {"total": 10}})
    result = run(handler, ctx)

    assert result.is_success is True
    assert seen == {
        "order": {"total": 10},
        "missing": None,
        "customer": "c-1",
        "absent": None,
        "ctx": ctx,
    }


def test_context_goes_to_underscore_context_and_is_not_forced() -> None:
    calls: list[Any] = []

    @step_handler("underscore")
    def with_underscore(_context: Any) -> None:
        calls.append(_context)

    @step_handler("none")
    def without_context() -> None:
        calls.append("called")

    ctx = make_context()
    assert run(with_underscore, ctx).is_success is True
    assert run(without_context, ctx).is_success is True
    assert calls == [ctx, "called"]


def test_underscore_parameter_receives_the_plain_name() -> None:
    @step_handler("under")
    @depends_on(order="validate")
    @inputs("customer")
    def handler(_order: Any, _customer: Any) -> dict[str, Any]:
        return {"order": _order, "customer": _customer}

    result = run(handler, make_context({"customer": "c"}, {"validate": 7}))

    assert result.result == {"order": 7, "customer": "c"}


def test_names_absent_from_the_signature_are_dropped() -> None:
    @step_handler("drops")
    @depends_on(unused="validate")
    @inputs("also_unused", "kept")
    def handler(kept: Any) -> dict[str, Any]:
        return {"kept": kept}

    result = run(handler, make_context({"kept": 1, "also_unused": 2}, {"validate": 3}))

    assert result.is_success is True
    assert result.result == {"kept": 1}


def test_var_keyword_receives_every_injected_name_but_not_the_context() -> None:
    @step_handler("kw")
    @depends_on(order="validate")
    @inputs("customer")
    def handler(**kwargs: Any) -> dict[str, Any]:
        return {"keys": sorted(kwargs)}

    result = run(handler, make_context({"customer": "c"}, {"validate": 1}))

    assert result.result == {"keys": ["customer", "order"]}


def test_var_keyword_does_not_duplicate_names_taken_by_underscore_parameters() -> None:
    @step_handler("kw_under")
    @depends_on(order="validate")
    def handler(_order: Any, **kwargs: Any) -> dict[str, Any]:
        return {"order": _order, "kwargs": sorted(kwargs)}

    result = run(handler, make_context(deps={"validate": 1}))

    assert result.result == {"order": 1, "kwargs": []}


def test_context_parameter_takes_precedence_over_underscore_context() -> None:
    @step_handler("both_contexts")
    def handler(context: Any, _context: Any = "unset") -> dict[str, Any]:
        return {"plain": context is not None, "underscore": _context}

    result = run(handler, make_context())

    assert result.result == {"plain": True, "underscore": "unset"}


def test_repeated_decorators_merge_and_order_below_the_handler_does_not_matter() -> None:
    @step_handler("merge")
    @inputs("a")
    @depends_on(x="step_x")
    @inputs("b")
    @depends_on(y="step_y")
    def handler(a: Any, b: Any, x: Any, y: Any) -> dict[str, Any]:
        return {"a": a, "b": b, "x": x, "y": y}

    result = run(handler, make_context({"a": 1, "b": 2}, {"step_x": 3, "step_y": 4}))

    assert result.result == {"a": 1, "b": 2, "x": 3, "y": 4}


class Order(BaseModel):
    order_id: str
    total: float


class CustomerInputs(BaseModel):
    customer_id: str
    tier: str | None = None


def test_dependency_model_is_validated_from_a_dict() -> None:
    @step_handler("model_dep")
    @depends_on(order=("validate", Order))
    def handler(order: Order) -> dict[str, Any]:
        return {"type": type(order).__name__, "total": order.total}

    result = run(handler, make_context(deps={"validate": {"order_id": "o", "total": "9.5"}}))

    assert result.result == {"type": "Order", "total": 9.5}


def test_dependency_model_passes_non_dict_results_through() -> None:
    @step_handler("model_dep_raw")
    @depends_on(order=("validate", Order))
    def handler(order: Any) -> dict[str, Any]:
        return {"order": order}

    assert run(handler, make_context(deps={"validate": 5})).result == {"order": 5}
    assert run(handler, make_context()).result == {"order": None}


def test_dependency_model_validation_failure_is_a_permanent_failure() -> None:
    @step_handler("model_dep_bad")
    @depends_on(order=("validate", Order))
    def handler(order: Order) -> None:
        raise AssertionError("must not run")

    result = run(handler, make_context(deps={"validate": {"order_id": "o"}}))

    assert result.is_success is False
    assert result.error_type == "ValidationError"
    assert result.retryable is False
    assert "total" in (result.error_message or "")


def test_inputs_model_is_built_from_every_field() -> None:
    @step_handler("model_inputs")
    @inputs(CustomerInputs)
    def handler(inputs: CustomerInputs) -> dict[str, Any]:
        return inputs.model_dump()

    result = run(handler, make_context({"customer_id": "c-9", "unrelated": 1}))

    assert result.result == {"customer_id": "c-9", "tier": None}


def test_inputs_model_missing_required_field_fails_without_retry() -> None:
    @step_handler("model_inputs_missing")
    @inputs(CustomerInputs)
    def handler(inputs: CustomerInputs) -> None:
        raise AssertionError("must not run")

    result = run(handler, make_context({"tier": "gold"}))

    assert result.is_success is False
    assert result.error_type == "ValidationError"
    assert result.retryable is False


# -- async, return wrapping, exceptions --------------------------------------------------------


def test_async_function_gets_an_async_call() -> None:
    @step_handler("async_fn")
    @inputs("n")
    async def handler(n: int) -> dict[str, Any]:
        return {"double": n * 2}

    instance = handler._handler_class()  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(instance.call)
    assert invoke_handler(instance, make_context({"n": 4})).result == {"double": 8}


def test_sync_function_keeps_a_sync_call() -> None:
    @step_handler("sync_fn")
    def handler() -> None:
        return None

    assert not inspect.iscoroutinefunction(handler._handler_class().call)  # type: ignore[attr-defined]


def test_sync_function_returning_a_coroutine_is_awaited() -> None:
    async def later() -> dict[str, Any]:
        return {"late": True}

    @step_handler("returns_coroutine")
    def handler() -> Any:
        return later()

    assert run(handler, make_context()).result == {"late": True}


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        (None, {}),
        (Order(order_id="o", total=1.5), {"order_id": "o", "total": 1.5}),
        (7, {"result": 7}),
    ],
)
def test_return_values_are_wrapped(returned: Any, expected: dict[str, Any]) -> None:
    @step_handler("wrap")
    def handler() -> Any:
        return returned

    result = run(handler, make_context())

    assert result.is_success is True
    assert result.result == expected


def test_returned_failure_passes_through() -> None:
    @step_handler("explicit_failure")
    def handler() -> StepHandlerResult:
        return StepHandlerResult.failure("declined", error_type="payment", retryable=False)

    result = run(handler, make_context())

    assert (result.error_type, result.retryable, result.error_message) == (
        "payment",
        False,
        "declined",
    )


@pytest.mark.parametrize(
    ("exc", "error_type", "retryable"),
    [
        (PermanentError("card expired", error_code="EXPIRED"), "permanent_error", False),
        (RateLimitError("slow down", retry_after=30), "retryable_error", True),
        (TaskerError("odd", retryable=False), "handler_error", False),
        (ValueError("bad"), "ValueError", False),
        (ConnectionError("reset"), "ConnectionError", True),
    ],
)
def test_exceptions_become_failures(exc: Exception, error_type: str, retryable: bool) -> None:
    @step_handler("raises")
    def handler() -> None:
        raise exc

    result = handler._handler_class().call(make_context())  # type: ignore[attr-defined]

    assert isinstance(result, StepHandlerResult)
    assert result.is_success is False
    assert (result.error_type, result.retryable) == (error_type, retryable)
    assert result.error_message == str(exc)


def test_async_exceptions_become_failures() -> None:
    @step_handler("async_raises")
    async def handler() -> None:
        raise PermanentError("nope", error_code="NOPE")

    result = run(handler, make_context())

    assert (result.error_type, result.retryable, result.error_code) == (
        "permanent_error",
        False,
        "NOPE",
    )


# -- the factory contract (for specialised decorators) -----------------------------------------


class GreetingMixin:
    greeting = "hi"

    def greet(self, who: str) -> str:
        return f"{self.greeting} {who}"


def test_make_handler_class_composes_bases_injections_and_return_wrapping() -> None:
    def extra(context: StepContext, handler: FunctionalHandler) -> dict[str, Any]:
        return {"helper": handler, "batch": context.get_input("batch")}

    def wrap(value: Any, handler: FunctionalHandler) -> StepHandlerResult:
        return StepHandlerResult.success({"wrapped": value}, metadata={"by": handler.name})

    def body(helper: Any, _batch: Any) -> str:
        return str(helper.greet(_batch))

    cls = make_handler_class(body, "mixed", "1.2.0", (GreetingMixin, StepHandler), extra, wrap)
    result = invoke_handler(cls(), make_context({"batch": "b1"}))

    assert [c.__name__ for c in cls.__mro__[:3]] == ["body", "GreetingMixin", "FunctionalHandler"]
    assert (cls.handler_name, cls.handler_version) == ("mixed", "1.2.0")
    assert result.result == {"wrapped": "hi b1"}
    assert result.metadata == {"by": "mixed"}


def test_make_handler_class_lets_results_bypass_wrap_and_maps_wrap_errors() -> None:
    def wrap(value: Any, handler: FunctionalHandler) -> StepHandlerResult:
        raise PermanentError(f"cannot wrap {value!r}")

    passthrough = make_handler_class(
        lambda: StepHandlerResult.success({"direct": 1}), "pt", wrap_return=wrap
    )
    broken = make_handler_class(lambda: 5, "broken", wrap_return=wrap)

    assert invoke_handler(passthrough(), make_context()).result == {"direct": 1}
    failure = invoke_handler(broken(), make_context())
    assert (failure.error_type, failure.error_message) == ("permanent_error", "cannot wrap 5")


def test_a_mixin_call_does_not_replace_the_generated_call() -> None:
    class CallingMixin:
        def call(self, context: StepContext) -> StepHandlerResult:
            return StepHandlerResult.failure("mixin call ran")

    cls = make_handler_class(lambda: {"fn": True}, "fn_wins", bases=(CallingMixin,))

    assert invoke_handler(cls(), make_context()).result == {"fn": True}


def test_registry_accepts_a_decorated_function() -> None:
    @step_handler("registered_fn")
    def handler() -> dict[str, Any]:
        return {"ok": True}

    registry = HandlerRegistry()
    registry.register("registered_fn", handler)

    assert registry.get_handler_class("registered_fn") is handler._handler_class  # type: ignore[attr-defined]
    resolved = registry.resolve("registered_fn")
    assert invoke_handler(resolved, make_context()).result == {"ok": True}
