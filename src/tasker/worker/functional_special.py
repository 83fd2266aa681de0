"""Decorators for decision, batch and API handlers written as functions (python-api.md §6.1).

Each one is ``make_handler_class`` with a mixin base plus two hooks: what extra keyword
argument the function receives (``batch_context``, ``api``) and how its return value becomes a
result (``Decision`` -> decision outcome, ``BatchConfig`` -> batch outcome). Everything else
(injection, sync/async, exception mapping) is the plain ``@step_handler`` behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tasker.worker.api_mixin import ApiHandler, APIMixin
from tasker.worker.batch import Batchable
from tasker.worker.batch_types import BatchAnalyzerOutcome, BatchWorkerOutcome
from tasker.worker.context import StepContext
from tasker.worker.decision import (
    Decision,
    DecisionHandler,
    DecisionMixin,
    DecisionPointOutcome,
    DecisionType,
)
from tasker.worker.functional import FunctionalHandler, HandlerDecorator, make_handler_class
from tasker.worker.results import StepHandlerResult, result_from_value

__all__ = [
    "BatchConfig",
    "Decision",
    "api_handler",
    "batch_analyzer",
    "batch_worker",
    "decision_handler",
]

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")

_NO_BRANCHES_REASON = "No branches"


@dataclass
class BatchConfig:
    """What a ``@batch_analyzer`` function returns: how many items, how many per batch.

    ``total_items == 0`` produces a ``no_batches`` outcome. ``metadata`` becomes the step
    result's metadata, as in the original.
    """

    total_items: int
    batch_size: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _require_name(name: object, decorator: str) -> None:
    if not isinstance(name, str) or not name:
        msg = f'{decorator} needs a handler name first: use @{decorator}("my_step")'
        raise TypeError(msg)


def _attach(func: F, handler_class: type[FunctionalHandler]) -> F:
    vars(func)["_handler_class"] = handler_class
    return func


def _as(handler: FunctionalHandler, mixin: type[M]) -> M:
    """``handler`` typed as its mixin; the generated class always has ``mixin`` as a base."""
    if not isinstance(handler, mixin):
        msg = f"{type(handler).__name__} is not a {mixin.__name__}"
        raise TypeError(msg)
    return handler


# -- decision ------------------------------------------------------------------------------------


def _decision_result(value: Any, handler: FunctionalHandler) -> StepHandlerResult:
    """``Decision`` (or a bare ``DecisionPointOutcome``) -> decision result; else §6.3."""
    outcome = value.outcome if isinstance(value, Decision) else value
    if not isinstance(outcome, DecisionPointOutcome):
        return result_from_value(value)
    decision = _as(handler, DecisionMixin)
    if outcome.decision_type is DecisionType.CREATE_STEPS:
        return decision.decision_success(
            outcome.next_step_names, routing_context=outcome.routing_context
        )
    return decision.skip_branches(
        outcome.reason or _NO_BRANCHES_REASON, routing_context=outcome.routing_context
    )


def decision_handler(name: str, version: str = "1.0.0") -> HandlerDecorator:
    """Make a function a decision handler; it returns ``Decision.route(...)``/``.skip(...)``.

    Args:
        name: the registry key (the template's ``handler.callable``).
        version: informational version.

    Returns:
        The decorator; the function gains ``_handler_class`` (a ``DecisionHandler``).

    Raises:
        TypeError: no name was given.
    """
    _require_name(name, "decision_handler")

    def decorate(func: F) -> F:
        return _attach(
            func,
            make_handler_class(
                func, name, version, bases=(DecisionHandler,), wrap_return=_decision_result
            ),
        )

    return decorate


# -- batch ---------------------------------------------------------------------------------------


def batch_analyzer(name: str, worker_template: str, version: str = "1.0.0") -> HandlerDecorator:
    """Make a function a batch analyzer; it returns a ``BatchConfig``.

    Args:
        name: the registry key.
        worker_template: the template's ``batch_worker`` step the engine instantiates.
        version: informational version.

    Returns:
        The decorator. A ``BatchConfig`` (or a ``BatchAnalyzerOutcome``) becomes
        ``batch_analyzer_success(..., worker_template_name=worker_template)``; other values
        follow the plain rules.

    Raises:
        TypeError: no name was given.
    """
    _require_name(name, "batch_analyzer")

    def wrap(value: Any, handler: FunctionalHandler) -> StepHandlerResult:
        if not isinstance(value, BatchConfig | BatchAnalyzerOutcome):
            return result_from_value(value)
        batchable = _as(handler, Batchable)
        if isinstance(value, BatchAnalyzerOutcome):
            return batchable.batch_analyzer_success(value, worker_template_name=worker_template)
        outcome = batchable.create_batch_outcome(value.total_items, value.batch_size)
        return batchable.batch_analyzer_success(
            outcome, metadata=value.metadata or None, worker_template_name=worker_template
        )

    def decorate(func: F) -> F:
        return _attach(
            func, make_handler_class(func, name, version, bases=(Batchable,), wrap_return=wrap)
        )

    return decorate


def _inject_batch_context(context: StepContext, handler: FunctionalHandler) -> dict[str, Any]:
    return {"batch_context": _as(handler, Batchable).get_batch_context(context)}


def _batch_worker_result(value: Any, handler: FunctionalHandler) -> StepHandlerResult:
    """A ``BatchWorkerOutcome`` becomes ``batch_worker_success``; anything else §6.3."""
    if not isinstance(value, BatchWorkerOutcome):
        return result_from_value(value)
    return _as(handler, Batchable).batch_worker_success(value)


def batch_worker(name: str, version: str = "1.0.0") -> HandlerDecorator:
    """Make a function a batch worker; it also receives ``batch_context``.

    ``batch_context`` is the step's ``BatchWorkerContext`` (range, batch metadata,
    checkpoint), or ``None`` when the step carries no integer cursor range.

    Args:
        name: the registry key.
        version: informational version.

    Returns:
        The decorator.

    Raises:
        TypeError: no name was given.
    """
    _require_name(name, "batch_worker")

    def decorate(func: F) -> F:
        return _attach(
            func,
            make_handler_class(
                func,
                name,
                version,
                bases=(Batchable,),
                extra_injections=_inject_batch_context,
                wrap_return=_batch_worker_result,
            ),
        )

    return decorate


# -- API -----------------------------------------------------------------------------------------


def _inject_api(_context: StepContext, handler: FunctionalHandler) -> dict[str, Any]:
    return {"api": handler}


def api_handler(
    name: str,
    base_url: str,
    version: str = "1.0.0",
    timeout: float = 30.0,
    default_headers: dict[str, str] | None = None,
) -> HandlerDecorator:
    """Make a function an HTTP handler; it also receives ``api`` (the handler instance).

    ``api.get(...)``, ``api.post(...)``, ``api.api_success(response)``,
    ``api.api_failure(response)`` and the rest of ``APIMixin`` are available on it.

    Args:
        name: the registry key.
        base_url: base URL of the client.
        version: informational version.
        timeout: client timeout in seconds.
        default_headers: headers sent with every request.

    Returns:
        The decorator.

    Raises:
        TypeError: no name was given.
    """
    _require_name(name, "api_handler")
    headers = dict(default_headers or {})

    def decorate(func: F) -> F:
        handler_class = make_handler_class(
            func, name, version, bases=(ApiHandler,), extra_injections=_inject_api
        )
        if not issubclass(handler_class, APIMixin):
            msg = f"{handler_class.__name__} is not an APIMixin"
            raise TypeError(msg)
        # The client settings are APIMixin class attributes; set them on this class only.
        handler_class.base_url = base_url
        handler_class.default_timeout = timeout
        handler_class.default_headers = headers
        return _attach(func, handler_class)

    return decorate
