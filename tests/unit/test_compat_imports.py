"""A handler module written for the original worker ports by renaming ``tasker_core`` to
``tasker`` (python-api.md §1): it imports, registers, resolves and runs."""

from __future__ import annotations

import importlib
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import tasker.errors
import tasker.exceptions
from tasker.worker.context import StepContext
from tasker.worker.execution import invoke_handler

PORTED_MODULE = """
from pydantic import BaseModel

from tasker.errors import PermanentError, RetryableError
from tasker.errors.error_classifier import ErrorClassifier, is_retryable
from tasker.exceptions import TaskerError, WorkerBootstrapError
from tasker.handler import HandlerRegistry
from tasker.logging import LogContext, log_info
from tasker.models import TaskSequenceStepWrapper
from tasker.registry import HandlerDefinition, ResolverChain
from tasker.registry.resolvers import ExplicitMappingResolver
from tasker.step_handler import StepHandler, depends_on, inputs, step_handler
from tasker.step_handler.base import StepHandlerCallResult
from tasker.types import ErrorType, FfiStepEvent, ResultStatus, StepContext, StepHandlerResult


class ValidateOrderHandler(StepHandler):
    handler_name = "ported.validate_order"
    handler_version = "1.0.0"

    def call(self, context: StepContext) -> StepHandlerResult:
        order = context.get_input("order")
        if order is None:
            return self.failure("order missing", error_type=ErrorType.VALIDATION_ERROR,
                                retryable=False)
        log_info("Order validated", LogContext(task_uuid=context.task_uuid))
        wrapper: TaskSequenceStepWrapper = context.task_sequence_step
        return StepHandlerResult.success(
            {"order": order, "namespace": wrapper.task.namespace_name}
        )


class ChargeHandler(StepHandler):
    handler_name = "ported.charge"

    async def call(self, context: StepContext) -> StepHandlerResult:
        order = context.get_dependency_field("validate", "order")
        if order["total"] > 1000:
            raise PermanentError("over limit", error_code="LIMIT")
        return self.success({"charged": order["total"]})


class Receipt(BaseModel):
    charged: float


@step_handler("ported.receipt")
@depends_on(charge="charge")
@inputs("email")
def make_receipt(charge, email, context):
    return {"receipt_for": email, "amount": Receipt(**charge).charged}
"""


@pytest.fixture
def ported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    name = f"ported_handlers_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PORTED_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def make_tss(context: dict[str, Any], deps: dict[str, Any] | None = None) -> dict[str, Any]:
    task_uuid, step_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "task": {
            "task": {"task_uuid": task_uuid, "context": context, "correlation_id": task_uuid},
            "task_name": "checkout",
            "task_version": "1.0.0",
            "namespace_name": "shop",
        },
        "workflow_step": {"workflow_step_uuid": step_uuid, "attempts": 0, "max_attempts": 3},
        "dependency_results": {k: {"success": True, "result": v} for k, v in (deps or {}).items()},
        "step_definition": {"name": "s", "handler": {"callable": "x", "initialization": {}}},
    }


def run(ported: ModuleType, callable_name: str, tss: dict[str, Any]) -> Any:
    registry = ported.HandlerRegistry()
    assert registry.discover_handlers(ported.__name__) == 3
    handler = registry.resolve(ported.HandlerDefinition(callable=callable_name))
    return invoke_handler(handler, StepContext.from_task_sequence_step(tss, callable_name))


def test_ported_class_handler_runs(ported: ModuleType) -> None:
    result = run(ported, "ported.validate_order", make_tss({"order": {"total": 5}}))

    assert result.is_success is True
    assert result.result == {"order": {"total": 5}, "namespace": "shop"}


def test_ported_handler_failure_keeps_its_error_type(ported: ModuleType) -> None:
    result = run(ported, "ported.validate_order", make_tss({}))

    assert (result.error_type, result.retryable) == ("validation_error", False)


def test_ported_async_handler_raising_permanent_error_is_not_retried(ported: ModuleType) -> None:
    tss = make_tss({}, {"validate": {"order": {"total": 5000}}})

    result = run(ported, "ported.charge", tss)

    assert (result.error_type, result.retryable, result.error_code) == (
        "permanent_error",
        False,
        "LIMIT",
    )


def test_ported_functional_handler_runs(ported: ModuleType) -> None:
    tss = make_tss({"email": "a@b.c"}, {"charge": {"charged": 12.5}})

    result = run(ported, "ported.receipt", tss)

    assert result.result == {"receipt_for": "a@b.c", "amount": 12.5}


def test_exceptions_module_shares_the_single_root() -> None:
    assert tasker.exceptions.TaskerError is tasker.errors.TaskerError
    for name in tasker.exceptions.__all__:
        assert issubclass(getattr(tasker.exceptions, name), tasker.errors.TaskerError), name
    with pytest.raises(tasker.exceptions.TaskerError):
        raise tasker.errors.PermanentError("caught by the one root")


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "tasker.types",
            {"StepContext", "StepHandlerResult", "ErrorType", "ResultStatus", "FfiStepEvent"},
        ),
        ("tasker.step_handler.base", {"StepHandler", "StepHandlerCallResult"}),
        (
            "tasker.step_handler.functional",
            {"step_handler", "depends_on", "inputs", "FunctionalHandler", "HandlerDecorator"},
        ),
        ("tasker.handler", {"HandlerRegistry", "StepHandler"}),
        (
            "tasker.registry",
            {
                "HandlerDefinition",
                "BaseResolver",
                "RegistryResolver",
                "ExplicitMappingResolver",
                "ClassLookupResolver",
                "ResolverChain",
                "MethodDispatchWrapper",
                "ResolverNotFoundError",
                "ResolutionError",
            },
        ),
        (
            "tasker.models",
            {
                "TaskSequenceStepWrapper",
                "TaskWrapper",
                "WorkflowStepWrapper",
                "StepDefinitionWrapper",
                "HandlerWrapper",
                "DependencyResultsWrapper",
            },
        ),
        (
            "tasker.logging",
            {"log_error", "log_warn", "log_info", "log_debug", "log_trace", "LogContext"},
        ),
        (
            "tasker.errors.error_classifier",
            {"ErrorClassifier", "get_classifier", "is_retryable", "is_permanent"},
        ),
    ],
)
def test_compatibility_paths_export_the_original_names(module: str, names: set[str]) -> None:
    imported = importlib.import_module(module)

    assert names <= set(imported.__all__)
    assert all(hasattr(imported, name) for name in names)


def test_log_helpers_send_ordered_string_fields_to_the_tasker_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tasker.logging import TRACE, LogContext, log_info, log_trace, log_warn

    step = uuid.uuid4()
    with caplog.at_level(TRACE, logger="tasker"):
        log_info("Order validated", {"extra": 1, "step_uuid": step, "correlation_id": "c-1"})
        log_warn("Fallback used", LogContext(namespace="shop", operation="charge"))
        log_trace("Detail", None)

    records = [
        (r.levelname, r.getMessage(), list(r.fields.items()))  # type: ignore[attr-defined]
        for r in caplog.records
    ]
    assert records == [
        (
            "INFO",
            "Order validated",
            [("correlation_id", "c-1"), ("step_uuid", str(step)), ("extra", "1")],
        ),
        ("WARNING", "Fallback used", [("namespace", "shop"), ("operation", "charge")]),
        ("TRACE", "Detail", []),
    ]
    assert caplog.records[0].filename == "test_compat_imports.py"
