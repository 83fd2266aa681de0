"""From a template's ``handler`` block to a handler instance (python-api.md §7.1, §7.3).

A ``ResolverChain`` asks its resolvers in priority order: ``explicit_mapping`` (names
registered in code) then ``class_lookup`` (an importable ``pkg.mod.ClassName``). A resolver
hint in the template bypasses the order. A ``method`` other than ``call`` wraps the handler so
that ``call`` runs that method instead.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from typing_extensions import override

from tasker.errors import ResolutionError, ResolverNotFoundError
from tasker.worker.context import StepContext

__all__ = [
    "BaseResolver",
    "ClassLookupResolver",
    "ExplicitMappingResolver",
    "HandlerDefinition",
    "MethodDispatchWrapper",
    "RegistryResolver",
    "ResolutionError",
    "ResolverChain",
    "ResolverNotFoundError",
    "instantiate_handler",
]

logger = logging.getLogger(__name__)

_DEFAULT_METHOD = "call"


@dataclass
class HandlerDefinition:
    """A step's ``handler`` block: which handler, which method, which resolver, what config."""

    callable: str
    handler_method: str | None = None
    resolver: str | None = None
    initialization: dict[str, Any] = field(default_factory=dict)

    def effective_method(self) -> str:
        """The method to run: ``handler_method`` or ``"call"``."""
        return self.handler_method or _DEFAULT_METHOD

    def uses_method_dispatch(self) -> bool:
        """Whether a method other than ``call`` was asked for."""
        return bool(self.handler_method) and self.handler_method != _DEFAULT_METHOD

    def has_resolver_hint(self) -> bool:
        """Whether the template names the resolver to use."""
        return bool(self.resolver)

    @classmethod
    def from_callable(cls, callable_name: str) -> HandlerDefinition:
        """A definition with only a callable."""
        return cls(callable=callable_name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandlerDefinition:
        """Build from the template dict; YAML key ``method`` becomes ``handler_method``."""
        init = data.get("initialization")
        return cls(
            callable=data.get("callable") or "",
            handler_method=data.get("method") or data.get("handler_method"),
            resolver=data.get("resolver"),
            initialization=init if isinstance(init, dict) else {},
        )


# Whether a class's constructor needs arguments, per class: ``inspect.signature`` costs tens of
# microseconds (it parses ``object``'s text signature), and handlers are built for every step.
_NEEDS_ARGS: weakref.WeakKeyDictionary[type[Any], bool] = weakref.WeakKeyDictionary()


def _constructor_needs_args(handler_class: type[Any]) -> bool:
    try:
        inspect.signature(handler_class).bind()
    except TypeError:
        return True
    except ValueError:  # no signature available (some builtins): just try the plain call
        return False
    return False


def instantiate_handler(handler_class: type[Any], config: dict[str, Any]) -> Any:
    """Build a fresh handler: ``cls()``, or ``cls(config=...)`` when that needs arguments.

    Raises:
        ResolutionError: the constructor failed.
    """
    needs_args = _NEEDS_ARGS.get(handler_class)
    if needs_args is None:
        needs_args = _constructor_needs_args(handler_class)
        _NEEDS_ARGS[handler_class] = needs_args
    try:
        if needs_args:
            return handler_class(config=config)
        return handler_class()
    except Exception as exc:
        raise ResolutionError(
            f"handler class {handler_class.__qualname__} could not be built: {exc}"
        ) from exc


class BaseResolver(ABC):
    """One way of finding handlers; lower ``priority`` is asked first."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The name templates use as ``handler.resolver``."""

    @property
    @abstractmethod
    def priority(self) -> int:
        """Position in the chain (lower first)."""

    @abstractmethod
    def can_resolve(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> bool:
        """Whether this resolver answers to ``definition``."""

    @abstractmethod
    def resolve(self, definition: HandlerDefinition, config: dict[str, Any] | None = None) -> Any:
        """A new handler instance, or ``None``."""

    def registered_callables(self) -> list[str]:
        """The callables this resolver knows by name (empty for pattern-based ones)."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, priority={self.priority})"


class RegistryResolver(BaseResolver):
    """Base for custom resolvers: match callables by ``pattern`` (regex) or ``prefix``.

    Subclasses set ``_name``, ``_priority`` and ``pattern`` or ``prefix`` and override
    ``resolve_handler``.
    """

    _name: ClassVar[str] = "custom_resolver"
    _priority: ClassVar[int] = 50
    pattern: ClassVar[str | None] = None
    prefix: ClassVar[str | None] = None

    @override
    @property
    def name(self) -> str:
        return self._name

    @override
    @property
    def priority(self) -> int:
        return self._priority

    @override
    def can_resolve(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> bool:
        return self._match_pattern(definition.callable)

    @override
    def resolve(self, definition: HandlerDefinition, config: dict[str, Any] | None = None) -> Any:
        if not self.can_resolve(definition, config):
            return None
        return self.resolve_handler(definition, config)

    def resolve_handler(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> Any:
        """Build the handler for a matching callable; ``None`` if it cannot."""
        del definition, config  # the default resolves nothing; subclasses use both
        return None

    def _match_pattern(self, callable_name: str) -> bool:
        if self.pattern is not None:
            return re.match(self.pattern, callable_name) is not None
        if self.prefix is not None:
            return callable_name.startswith(self.prefix)
        return False


class ExplicitMappingResolver(BaseResolver):
    """Handlers registered in code under an exact key (normally their ``handler_name``).

    A value may be a class (a new instance per resolve), a factory (a callable without
    ``call``, invoked with the config) or an instance (returned as is).
    """

    def __init__(self, name: str = "explicit_mapping", priority: int = 10) -> None:
        self._name = name
        self._priority = priority
        self._handlers: dict[str, Any] = {}

    @override
    @property
    def name(self) -> str:
        return self._name

    @override
    @property
    def priority(self) -> int:
        return self._priority

    def register(self, key: str, handler: Any) -> None:
        """Map ``key`` to a class, factory or instance (a DSL function maps to its class)."""
        self._handlers[key] = getattr(handler, "_handler_class", handler)

    def unregister(self, key: str) -> bool:
        """Forget ``key``; whether it was there."""
        return self._handlers.pop(key, None) is not None

    @override
    def can_resolve(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> bool:
        return definition.callable in self._handlers

    @override
    def resolve(self, definition: HandlerDefinition, config: dict[str, Any] | None = None) -> Any:
        entry = self._handlers.get(definition.callable)
        if entry is None:
            return None
        settings = definition.initialization if config is None else config
        if isinstance(entry, type):
            return instantiate_handler(entry, settings)
        if callable(entry) and not hasattr(entry, "call"):
            return entry(settings)
        return entry

    @override
    def registered_callables(self) -> list[str]:
        return list(self._handlers)


_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\.[A-Z]\w*$")


class ClassLookupResolver(BaseResolver):
    """Import ``pkg.mod.ClassName`` and instantiate it, if it has a ``call`` method."""

    def __init__(self, name: str = "class_lookup", priority: int = 100) -> None:
        self._name = name
        self._priority = priority

    @override
    @property
    def name(self) -> str:
        return self._name

    @override
    @property
    def priority(self) -> int:
        return self._priority

    @override
    def can_resolve(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> bool:
        return _CLASS_PATH.match(definition.callable) is not None

    @override
    def resolve(self, definition: HandlerDefinition, config: dict[str, Any] | None = None) -> Any:
        if not self.can_resolve(definition, config):
            return None
        module_name, _, attribute = definition.callable.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            logger.debug("Handler module not importable: %s (%s)", module_name, exc)
            return None
        found = getattr(module, attribute, None)
        found = getattr(found, "_handler_class", found)
        if not isinstance(found, type) or not callable(getattr(found, "call", None)):
            return None
        settings = definition.initialization if config is None else config
        return instantiate_handler(found, settings)


class MethodDispatchWrapper:
    """Makes ``call(context)`` run another method of the handler (template ``method``).

    Raises:
        AttributeError: the handler has no such method.
    """

    def __init__(self, handler: Any, target_method: str) -> None:
        method = getattr(handler, target_method, None)
        if not callable(method):
            raise AttributeError(
                f"handler {type(handler).__name__} has no method {target_method!r}"
            )
        self._handler = handler
        self._target_method = target_method
        self._method: Callable[[StepContext], Any] = method

    @property
    def handler(self) -> Any:
        """The wrapped handler."""
        return self._handler

    @property
    def target_method(self) -> str:
        """The method ``call`` runs."""
        return self._target_method

    def call(self, context: StepContext) -> Any:
        """Run the target method (its awaitable, if any, is awaited by the caller)."""
        return self._method(context)

    def unwrap(self) -> Any:
        """The wrapped handler."""
        return self._handler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)

    def __repr__(self) -> str:
        return f"MethodDispatchWrapper({self._handler!r}, {self._target_method!r})"


class ResolverChain:
    """Resolvers in priority order; the first that builds a handler wins."""

    def __init__(self, resolvers: list[BaseResolver] | None = None) -> None:
        self._resolvers: list[BaseResolver] = sorted(resolvers or [], key=lambda r: r.priority)

    @classmethod
    def default(cls) -> ResolverChain:
        """``explicit_mapping`` (10) then ``class_lookup`` (100)."""
        return cls([ExplicitMappingResolver(), ClassLookupResolver()])

    def add_resolver(self, resolver: BaseResolver) -> ResolverChain:
        """Insert ``resolver`` at its priority; returns the chain for chaining."""
        self._resolvers.append(resolver)
        self._resolvers.sort(key=lambda r: r.priority)
        return self

    def remove_resolver(self, name: str) -> bool:
        """Remove the resolver called ``name``; whether there was one."""
        before = len(self._resolvers)
        self._resolvers = [r for r in self._resolvers if r.name != name]
        return len(self._resolvers) != before

    def get_resolver(self, name: str) -> BaseResolver | None:
        """The resolver called ``name``, or ``None``."""
        return next((r for r in self._resolvers if r.name == name), None)

    @property
    def explicit_resolver(self) -> ExplicitMappingResolver | None:
        """The first explicit-mapping resolver, which ``register`` feeds."""
        return next((r for r in self._resolvers if isinstance(r, ExplicitMappingResolver)), None)

    def register(self, key: str, handler: Any) -> None:
        """Register ``handler`` under ``key`` with the explicit resolver.

        Raises:
            RuntimeError: the chain has no explicit-mapping resolver.
        """
        explicit = self.explicit_resolver
        if explicit is None:
            raise RuntimeError(
                "this resolver chain has no explicit_mapping resolver to register in"
            )
        explicit.register(key, handler)

    def resolve(self, definition: HandlerDefinition, config: dict[str, Any] | None = None) -> Any:
        """A new handler for ``definition`` (not yet wrapped for ``method``), or ``None``.

        Raises:
            ResolverNotFoundError: the definition's resolver hint names no resolver here.
            ResolutionError: a handler was found but its constructor failed.
        """
        if definition.has_resolver_hint():
            hinted = self.get_resolver(str(definition.resolver))
            if hinted is None:
                raise ResolverNotFoundError(
                    f"handler {definition.callable!r} asks for resolver {definition.resolver!r}, "
                    f"which is not configured (available: {', '.join(self.resolver_names)})"
                )
            return hinted.resolve(definition, config)
        for resolver in self._resolvers:
            if resolver.can_resolve(definition, config):
                handler = resolver.resolve(definition, config)
                if handler is not None:
                    return handler
        return None

    def can_resolve(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> bool:
        """Whether some resolver (the hinted one, if any) answers to ``definition``."""
        if definition.has_resolver_hint():
            hinted = self.get_resolver(str(definition.resolver))
            return hinted is not None and hinted.can_resolve(definition, config)
        return any(r.can_resolve(definition, config) for r in self._resolvers)

    def wrap_for_method_dispatch(self, handler: Any, definition: HandlerDefinition) -> Any:
        """Wrap ``handler`` so ``call`` runs ``definition``'s method, when it has one.

        A handler without that method (DSL handlers have only ``call``) is returned unwrapped
        with a warning.
        """
        if not definition.uses_method_dispatch():
            return handler
        method = definition.effective_method()
        if not callable(getattr(handler, method, None)):
            logger.warning(
                "Handler method missing, using call: handler=%s method=%s",
                definition.callable,
                method,
            )
            return handler
        return MethodDispatchWrapper(handler, method)

    def registered_callables(self) -> list[str]:
        """Every callable known by name to some resolver."""
        return sorted({c for r in self._resolvers for c in r.registered_callables()})

    @property
    def resolver_names(self) -> list[str]:
        """Resolver names in chain order."""
        return [r.name for r in self._resolvers]

    def list_resolvers(self) -> list[tuple[str, int]]:
        """``(name, priority)`` pairs in chain order."""
        return [(r.name, r.priority) for r in self._resolvers]

    def chain_info(self) -> dict[str, Any]:
        """A summary for diagnostics."""
        return {
            "resolver_count": len(self._resolvers),
            "resolvers": [
                {"name": r.name, "priority": r.priority, "type": type(r).__name__}
                for r in self._resolvers
            ],
            "registered_callables": self.registered_callables(),
        }

    def __len__(self) -> int:
        return len(self._resolvers)
