"""The handler contract and the registry that finds handlers (python-api.md §4, §7.2).

``StepHandler`` is what ported handlers subclass. ``HandlerRegistry`` is a plain object: the
runtime may own one; ``HandlerRegistry.instance()`` is only the process-wide default that ported
code (``HandlerRegistry.instance().register(...)``) reaches, and the runtime uses it unless
given another.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TypeAlias

import yaml

from tasker.worker.context import StepContext
from tasker.worker.models import HandlerWrapper
from tasker.worker.resolvers import HandlerDefinition, ResolverChain
from tasker.worker.results import ErrorType, StepHandlerResult

__all__ = ["HandlerRegistry", "HandlerSpec", "StepHandler", "StepHandlerCallResult"]

logger = logging.getLogger(__name__)

StepHandlerCallResult: TypeAlias = StepHandlerResult | Awaitable[StepHandlerResult]
"""What ``call`` returns: a result, or (``async def call``) an awaitable of one."""


class StepHandler(ABC):
    """Base of class-based handlers: implement ``call`` (plain or ``async def``).

    A new instance runs each step, so instances must not keep state between steps. The
    constructor takes no arguments; a subclass whose ``__init__`` needs some is built as
    ``cls(config=<handler.initialization>)``.
    """

    handler_name: ClassVar[str] = ""
    handler_version: ClassVar[str] = "1.0.0"

    @abstractmethod
    def call(self, context: StepContext) -> StepHandlerCallResult:
        """Run the step and say how it went."""

    @property
    def name(self) -> str:
        """The registry key: ``handler_name``, else the class name."""
        return self.handler_name or type(self).__name__

    @property
    def version(self) -> str:
        """The handler's version (informational)."""
        return self.handler_version

    @property
    def capabilities(self) -> list[str]:
        """What the handler can do; specialised bases add to it."""
        return ["process"]

    def config_schema(self) -> dict[str, Any] | None:
        """JSON schema of ``handler.initialization``; ``None`` when not declared."""
        return None

    def success(
        self, result: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> StepHandlerResult:
        """A success carrying ``result`` (``None`` becomes ``{}``)."""
        return StepHandlerResult.success(result or {}, metadata)

    def failure(
        self,
        message: str,
        error_type: str = ErrorType.HANDLER_ERROR,
        retryable: bool = True,
        metadata: dict[str, Any] | None = None,
        error_code: str | None = None,
    ) -> StepHandlerResult:
        """A failure; ``retryable=False`` fails the step without retry."""
        return StepHandlerResult.failure(message, error_type, retryable, metadata, error_code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


HandlerSpec: TypeAlias = str | HandlerDefinition | HandlerWrapper
"""What ``HandlerRegistry.resolve`` accepts."""

_LOADED_MODULE_MARKERS = ("handlers", "step_handler", "workflow", "test")


def _handler_class_of(obj: Any, base: type[StepHandler] = StepHandler) -> type[StepHandler] | None:
    """The handler class ``obj`` stands for: itself, or a DSL function's ``_handler_class``."""
    # Only plain functions are asked for _handler_class: arbitrary objects met while scanning
    # foreign modules may answer any attribute (mocks) or raise from __getattr__.
    candidate = vars(obj).get("_handler_class") if inspect.isfunction(obj) else obj
    if isinstance(candidate, type) and issubclass(candidate, base):
        return candidate
    return None


class HandlerRegistry:
    """Handler classes by name, plus the resolver chain that turns a step into a handler."""

    _default: ClassVar[HandlerRegistry | None] = None
    _default_lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(self) -> None:
        self._handlers: dict[str, type[StepHandler]] = {}
        self._resolver_chain = ResolverChain.default()
        self._bootstrapped = False

    @classmethod
    def instance(cls, skip_bootstrap: bool = False) -> HandlerRegistry:
        """The process-wide default registry; the first call bootstraps it.

        Args:
            skip_bootstrap: create it empty (tests).
        """
        with cls._default_lock:
            if cls._default is None:
                registry = cls()
                # Published before bootstrapping: handler modules imported during bootstrap
                # may call instance() themselves.
                cls._default = registry
                if not skip_bootstrap:
                    registry.bootstrap_handlers()
            return cls._default

    @classmethod
    def reset_instance(cls) -> None:
        """Forget the default registry; the next ``instance()`` builds a new one."""
        with cls._default_lock:
            cls._default = None

    # -- registration ----------------------------------------------------------------------

    def register(self, name: str, handler_class: Any) -> None:
        """Register a ``StepHandler`` subclass (or a DSL-decorated function) under ``name``.

        Re-registering a name with another class warns and overwrites.

        Raises:
            ValueError: ``handler_class`` is neither.
        """
        found = _handler_class_of(handler_class)
        if found is None:
            raise ValueError(
                f"cannot register {handler_class!r} as handler {name!r}: expected a StepHandler "
                "subclass or a function decorated with @step_handler"
            )
        previous = self._handlers.get(name)
        if previous is not None and previous is not found:
            logger.warning(
                "Handler replaced: name=%s old=%s new=%s",
                name,
                previous.__qualname__,
                found.__qualname__,
            )
        self._handlers[name] = found
        explicit = self._resolver_chain.explicit_resolver
        if explicit is not None:
            explicit.register(name, found)

    def unregister(self, name: str) -> bool:
        """Forget ``name``; whether it was registered."""
        if self._handlers.pop(name, None) is None:
            return False
        explicit = self._resolver_chain.explicit_resolver
        if explicit is not None:
            explicit.unregister(name)
        return True

    def register_module(
        self, module: ModuleType, base_class: type[StepHandler] | None = None
    ) -> int:
        """Register every handler defined or imported in ``module``.

        Picks ``StepHandler`` subclasses (of ``base_class`` if given) with a non-empty
        ``handler_name``, and functions carrying ``_handler_class`` (DSL).

        Returns:
            How many registrations were made.
        """
        return len(self._scan_module(module, base_class))

    def _scan_module(
        self, module: ModuleType, base_class: type[StepHandler] | None = None
    ) -> list[str]:
        base = base_class or StepHandler
        names = []
        # vars(), not dir()/getattr: a module-level __getattr__ may import or warn.
        for obj in list(vars(module).values()):
            found = _handler_class_of(obj, base)
            if found is None or found is base or inspect.isabstract(found):
                continue
            if found.handler_name:
                self.register(found.handler_name, found)
                names.append(found.handler_name)
        return names

    def discover_handlers(self, package: str, base_class: type[StepHandler] | None = None) -> int:
        """Import ``package`` and all its submodules and register their handlers.

        Submodules that fail to import are logged and skipped.

        Returns:
            How many registrations were made (0 if the package does not import).
        """
        try:
            root = importlib.import_module(package)
        except Exception:
            logger.exception("Handler package import failed: package=%s", package)
            return 0
        count = len(self._scan_module(root, base_class))
        for module in _walk_submodules(root):
            count += len(self._scan_module(module, base_class))
        logger.debug("Handlers discovered: package=%s count=%d", package, count)
        return count

    # -- lookup ----------------------------------------------------------------------------

    def resolve(self, spec: HandlerSpec) -> Any | None:
        """A new handler instance for ``spec`` (wrapped for ``method`` dispatch), or ``None``.

        Args:
            spec: a callable name, a ``HandlerDefinition`` or a ``HandlerWrapper``.

        Raises:
            ResolverNotFoundError: the definition names a resolver the chain does not have.
            ResolutionError: a handler was found but could not be built.
        """
        definition = _to_definition(spec)
        handler = self._resolver_chain.resolve(definition)
        if handler is None:
            logger.debug("Handler not resolved: callable=%s", definition.callable)
            return None
        return self._resolver_chain.wrap_for_method_dispatch(handler, definition)

    @property
    def resolver_chain(self) -> ResolverChain:
        """The chain ``resolve`` uses; add custom resolvers to it."""
        return self._resolver_chain

    def get_handler_class(self, name: str) -> type[StepHandler] | None:
        """The class registered under ``name``, or ``None``."""
        return self._handlers.get(name)

    def is_registered(self, name: str) -> bool:
        """Whether ``name`` is registered."""
        return name in self._handlers

    def list_handlers(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._handlers)

    def handler_count(self) -> int:
        """How many names are registered."""
        return len(self._handlers)

    def clear(self) -> None:
        """Forget every handler and custom resolver."""
        self._handlers.clear()
        self._resolver_chain = ResolverChain.default()
        self._bootstrapped = False

    # -- bootstrap -------------------------------------------------------------------------

    def bootstrap_handlers(self) -> int:
        """Register the handlers this process should know without being told.

        With ``TASKER_ENV=test``, handlers in already-imported modules whose name contains
        ``handlers``, ``step_handler``, ``workflow`` or ``test``. Otherwise, or if that finds
        none, each ``steps[].handler.callable`` of the YAML templates that imports as
        ``module.Class``.

        Returns:
            How many distinct names were registered.
        """
        names: set[str] = set()
        if os.environ.get("TASKER_ENV") == "test":
            for module in _loaded_handler_modules():
                names.update(self._scan_module(module))
        if not names:
            for callable_name in sorted(_template_callables(_template_files())):
                found = _import_handler_class(callable_name)
                if found is not None:
                    name = found.handler_name or callable_name
                    self.register(name, found)
                    names.add(name)
        self._bootstrapped = True
        logger.debug("Handlers bootstrapped: count=%d", len(names))
        return len(names)

    def template_discovery_info(self) -> dict[str, Any]:
        """Where bootstrap looks for templates and what it finds there (diagnostics)."""
        directory = _template_dir()
        files = _template_files()
        return {
            "environment": os.environ.get("TASKER_ENV"),
            "template_path": None if directory is None else str(directory),
            "template_files": [str(path) for path in files],
            "handler_callables": sorted(_template_callables(files)),
            "registered_handlers": self.list_handlers(),
            "bootstrapped": self._bootstrapped,
        }


def _to_definition(spec: HandlerSpec) -> HandlerDefinition:
    if isinstance(spec, HandlerDefinition):
        return spec
    if isinstance(spec, HandlerWrapper):
        return HandlerDefinition(
            callable=spec.callable,
            handler_method=spec.handler_method,
            resolver=spec.resolver,
            initialization=spec.initialization,
        )
    return HandlerDefinition(callable=spec)


def _loaded_handler_modules() -> list[ModuleType]:
    """Imported modules whose name suggests they hold handlers (test bootstrap)."""
    return [
        module
        for name, module in list(sys.modules.items())
        # sys.modules may hold None placeholders despite its annotation.
        if getattr(module, "__dict__", None) is not None
        and any(marker in name for marker in _LOADED_MODULE_MARKERS)
    ]


def _walk_submodules(package: ModuleType) -> Iterator[ModuleType]:
    path = getattr(package, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=f"{package.__name__}.", onerror=_log_walk_error):
        try:
            yield importlib.import_module(info.name)
        except Exception:
            logger.warning("Handler module skipped: module=%s", info.name, exc_info=True)


def _log_walk_error(module_name: str) -> None:
    logger.warning("Handler package skipped: package=%s", module_name, exc_info=True)


def _import_handler_class(callable_name: str) -> type[StepHandler] | None:
    """Import ``pkg.mod.Class``; ``None`` for logical names that do not import."""
    module_name, _, attribute = callable_name.rpartition(".")
    if not module_name:
        return None
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        logger.debug("Template callable not importable: callable=%s error=%s", callable_name, exc)
        return None
    return _handler_class_of(getattr(module, attribute, None))


def _project_root() -> Path | None:
    here = Path.cwd()
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").exists() or (directory / ".git").exists():
            return directory
    return None


def _template_dir() -> Path | None:
    """The first template location that exists (python-api.md §7.2 order)."""
    configured = os.environ.get("TASKER_TEMPLATE_PATH")
    if configured:
        return Path(configured)
    candidates = []
    if os.environ.get("TASKER_ENV") == "test":
        candidates.append(Path("tests/fixtures/templates"))
    workspace = os.environ.get("WORKSPACE_PATH")
    if workspace:
        candidates.append(Path(workspace) / "config" / "tasks")
    root = _project_root()
    if root is not None:
        candidates.append(root / "config" / "tasks")
    candidates.append(Path("config/tasks"))
    return next((c for c in candidates if c.is_dir()), None)


def _template_files() -> list[Path]:
    directory = _template_dir()
    if directory is None:
        return []
    if directory.is_file():
        return [directory]
    return sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])


def _template_callables(files: list[Path]) -> set[str]:
    """Every ``steps[].handler.callable`` in ``files``; unreadable files are skipped."""
    found: set[str] = set()
    for path in files:
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            # One line: YAML errors span several (problem, mark, context).
            logger.warning("Template skipped: file=%s error=%s", path, " ".join(str(exc).split()))
            continue
        for document in documents:
            steps = document.get("steps") if isinstance(document, dict) else None
            for step in steps if isinstance(steps, list) else []:
                handler = step.get("handler") if isinstance(step, dict) else None
                callable_name = handler.get("callable") if isinstance(handler, dict) else None
                if isinstance(callable_name, str) and callable_name:
                    found.add(callable_name)
    return found
