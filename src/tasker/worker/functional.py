"""Handlers written as plain functions (python-api.md §6).

``@step_handler("name")`` turns a function into a handler class (kept on the function as
``_handler_class``) that injects ancestors' results (``@depends_on``), task inputs
(``@inputs``) and the context as keyword arguments, wraps the return value (§6.3) and turns
exceptions into failures (§6.4). ``make_handler_class`` is the one factory behind every
decorator, so the specialised ones (decision, batch, API) differ only in what they inject and
how they wrap the return value.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeAlias, TypeVar

from pydantic import BaseModel

from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult, result_from_exception, result_from_value

__all__ = [
    "ExtraInjections",
    "FunctionalHandler",
    "HandlerDecorator",
    "WrapReturn",
    "depends_on",
    "inputs",
    "make_handler_class",
    "step_handler",
]

F = TypeVar("F", bound=Callable[..., Any])

ExtraInjections: TypeAlias = Callable[[StepContext, "FunctionalHandler"], dict[str, Any]]
"""``(context, handler) -> {kwarg: value}``: extra arguments a specialised decorator injects."""

WrapReturn: TypeAlias = Callable[[Any, "FunctionalHandler"], StepHandlerResult]
"""``(returned value, handler) -> result``: how a specialised decorator reads the return."""

_SPEC_ATTR = "_tasker_injections"


class HandlerDecorator(Protocol):
    """What ``step_handler(...)``, ``depends_on(...)`` and ``inputs(...)`` return."""

    def __call__(self, func: F, /) -> F: ...


@dataclass
class _Injections:
    """What ``@depends_on`` and ``@inputs`` asked for; kept on the function itself."""

    dependencies: dict[str, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    input_keys: list[str] = field(default_factory=list)
    input_model: type[BaseModel] | None = None


def _injections_of(func: Callable[..., Any]) -> _Injections:
    spec = vars(func).get(_SPEC_ATTR)
    if not isinstance(spec, _Injections):
        spec = _Injections()
        vars(func)[_SPEC_ATTR] = spec
    return spec


@dataclass(frozen=True)
class _CallShape:
    """Which keyword arguments the function accepts, read once from its signature."""

    names: frozenset[str]
    var_keyword: bool

    @classmethod
    def of(cls, func: Callable[..., Any]) -> _CallShape:
        parameters = inspect.signature(func).parameters.values()
        keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return cls(
            names=frozenset(p.name for p in parameters if p.kind in keyword_kinds),
            var_keyword=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters),
        )

    def arguments(self, candidates: dict[str, Any], context: StepContext) -> dict[str, Any]:
        """Keep what the signature takes: ``x`` goes to ``x`` and/or ``_x``, else to
        ``**kwargs``, else is dropped; the context goes to ``context`` or ``_context``."""
        kwargs: dict[str, Any] = {}
        for name, value in candidates.items():
            matched = False
            for target in (name, f"_{name}"):
                if target in self.names:
                    kwargs[target] = value
                    matched = True
            if not matched and self.var_keyword:
                kwargs[name] = value
        if "context" in self.names:
            kwargs["context"] = context
        elif "_context" in self.names:
            kwargs["_context"] = context
        return kwargs


class FunctionalHandler(StepHandler):
    """Base of the classes the decorators generate; ``call`` runs the wrapped function.

    Failures while injecting (a model that does not validate, say), in the function, or
    while wrapping its return value all become failure results (§6.4).
    """

    _func: ClassVar[Callable[..., Any]]
    _call_shape: ClassVar[_CallShape]
    _extra_injections: ClassVar[ExtraInjections | None] = None
    _wrap_return: ClassVar[WrapReturn | None] = None

    def call(self, context: StepContext) -> StepHandlerResult | Awaitable[StepHandlerResult]:
        try:
            value = self._func(**self._arguments(context))
        except Exception as exc:
            return result_from_exception(exc)
        if inspect.isawaitable(value):  # a plain def that returned a coroutine
            return self._finish_later(value)
        return self._finish(value)

    async def _call_async(self, context: StepContext) -> StepHandlerResult:
        try:
            value = await self._func(**self._arguments(context))
        except Exception as exc:
            return result_from_exception(exc)
        return self._finish(value)

    async def _finish_later(self, pending: Awaitable[Any]) -> StepHandlerResult:
        try:
            value = await pending
        except Exception as exc:
            return result_from_exception(exc)
        return self._finish(value)

    def _arguments(self, context: StepContext) -> dict[str, Any]:
        spec = _injections_of(type(self)._func)
        candidates: dict[str, Any] = {}
        for parameter, (step, model) in spec.dependencies.items():
            raw = context.get_dependency_result(step)
            if model is not None and isinstance(raw, dict):
                raw = model.model_validate(raw)
            candidates[parameter] = raw
        if spec.input_model is not None:
            fields = spec.input_model.model_fields
            candidates["inputs"] = spec.input_model(**{f: context.get_input(f) for f in fields})
        for key in spec.input_keys:
            candidates[key] = context.get_input(key)
        extra = type(self)._extra_injections
        if extra is not None:
            candidates.update(extra(context, self))
        return type(self)._call_shape.arguments(candidates, context)

    def _finish(self, value: Any) -> StepHandlerResult:
        if isinstance(value, StepHandlerResult):
            return value
        try:
            wrap = type(self)._wrap_return
            return result_from_value(value) if wrap is None else wrap(value, self)
        except Exception as exc:
            return result_from_exception(exc)


def make_handler_class(
    func: Callable[..., Any],
    name: str,
    version: str = "1.0.0",
    bases: tuple[type, ...] = (),
    extra_injections: ExtraInjections | None = None,
    wrap_return: WrapReturn | None = None,
) -> type[FunctionalHandler]:
    """Build the handler class for a decorated function (the factory behind every decorator).

    Contract, for authors of specialised decorators:

    - The class derives from ``(*bases, FunctionalHandler)``; list mixins in ``bases``
      (``StepHandler`` itself may be listed and is dropped: ``FunctionalHandler`` derives from
      it). The class defines its own ``call`` (``async def`` when ``func`` is a coroutine
      function), so a mixin's ``call`` never replaces it.
    - ``handler_name = name``, ``handler_version = version``; ``__name__``, ``__qualname__``,
      ``__doc__`` and ``__module__`` come from ``func``.
    - Arguments: ``@depends_on``/``@inputs`` declarations are read from ``func`` at call time
      (so decorator order does not matter), then ``extra_injections(context, handler)`` adds or
      overrides entries; all of them go through the same signature filter (``x`` also to
      ``_x``; dropped when neither is a parameter and there is no ``**kwargs``). The context is
      passed as ``context`` or ``_context`` if the function has such a parameter.
    - Return: a ``StepHandlerResult`` passes through; anything else goes to
      ``wrap_return(value, handler)`` (default ``result_from_value``, python-api.md §6.3).
    - Exceptions from injection, ``func``, ``extra_injections`` or ``wrap_return`` become
      failure results (python-api.md §6.4); ``call`` does not raise ``Exception``.

    The caller attaches the class to ``func`` as ``_handler_class``; this function does not.

    Args:
        func: the handler function, plain or ``async def``.
        name: the registry key (``handler_name``).
        version: ``handler_version``.
        bases: mixins to combine with ``FunctionalHandler``.
        extra_injections: extra keyword arguments, computed per call.
        wrap_return: conversion of the function's return value.

    Returns:
        The generated handler class.
    """
    parents = (*(b for b in bases if b is not StepHandler), FunctionalHandler)
    namespace: dict[str, Any] = {
        "handler_name": name,
        "handler_version": version,
        "_func": staticmethod(func),
        "_call_shape": _CallShape.of(func),
        "_extra_injections": None if extra_injections is None else staticmethod(extra_injections),
        "_wrap_return": None if wrap_return is None else staticmethod(wrap_return),
        "call": (
            FunctionalHandler._call_async
            if inspect.iscoroutinefunction(func)
            else FunctionalHandler.call
        ),
        "__module__": func.__module__,
        "__qualname__": func.__qualname__,
        "__doc__": func.__doc__,
    }
    return type(func.__name__, parents, namespace)


def _check_name(name: object, decorator: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f'{decorator} needs a handler name first: use @{decorator}("my_step")')
    return name


def step_handler(name: str, version: str = "1.0.0") -> HandlerDecorator:
    """Make a function a step handler registered as ``name``.

    Must be the outermost handler decorator; ``@depends_on`` and ``@inputs`` go below it.

    Raises:
        TypeError: no name was given (``@step_handler`` without arguments).
    """
    _check_name(name, "step_handler")

    def decorate(func: F) -> F:
        vars(func)["_handler_class"] = make_handler_class(func, name, version)
        return func

    return decorate


def depends_on(**params: str | tuple[str, type[BaseModel]]) -> HandlerDecorator:
    """Inject ancestors' results: ``param="step"`` or ``param=("step", Model)``.

    The value is ``context.get_dependency_result(step)`` (``None`` when absent); with a model
    it is validated into the model when it is a dict. May be repeated; declarations merge.

    Raises:
        TypeError: a value is neither a step name nor a ``(step name, model)`` pair.
    """
    parsed = {parameter: _parse_dependency(parameter, spec) for parameter, spec in params.items()}

    def decorate(func: F) -> F:
        _injections_of(func).dependencies.update(parsed)
        return func

    return decorate


def _parse_dependency(parameter: str, spec: object) -> tuple[str, type[BaseModel] | None]:
    """Check one ``depends_on`` entry at decoration time (types are not enforced at runtime)."""
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, tuple) and len(spec) == 2:
        step, model = spec
        if isinstance(step, str) and isinstance(model, type) and issubclass(model, BaseModel):
            return step, model
    raise TypeError(
        f"depends_on({parameter}=...): expected a step name or (step name, pydantic model), "
        f"got {spec!r}"
    )


def inputs(*keys: str | type[BaseModel]) -> HandlerDecorator:
    """Inject task inputs: one keyword argument per key, or one ``inputs`` model.

    Keys come from ``context.get_input`` (``None`` when absent). A model is built from every
    one of its fields, missing ones passed as ``None`` (so required fields fail the step).

    Raises:
        TypeError: the arguments are neither strings nor a single pydantic model.
    """
    first = keys[0] if len(keys) == 1 else None
    model = first if isinstance(first, type) and issubclass(first, BaseModel) else None
    names = [key for key in keys if isinstance(key, str)]
    if model is None and len(names) != len(keys):
        raise TypeError(f"inputs(...): expected input names or one pydantic model, got {keys!r}")

    def decorate(func: F) -> F:
        spec = _injections_of(func)
        if model is not None:
            spec.input_model = model
        spec.input_keys.extend(name for name in names if name not in spec.input_keys)
        return func

    return decorate
