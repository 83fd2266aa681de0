"""Task and step templates as immutable values, with the graph rules that make a template valid.

Parsing YAML (files, line numbers, legacy keys) lives in ``tasker.templates``; this module only
knows the validated shape and how to resolve environment overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "ALL_STEPS",
    "BackoffKind",
    "BatchConfig",
    "EnvironmentOverride",
    "EventDeclaration",
    "FailureStrategy",
    "HandlerSpec",
    "IdentityStrategy",
    "Lifecycle",
    "RetryPolicy",
    "StepOverride",
    "StepTemplate",
    "StepType",
    "TaskTemplate",
    "resolve_environment",
    "template_from_dict",
    "template_to_dict",
]


class StepType(StrEnum):
    STANDARD = "standard"
    DECISION = "decision"
    DEFERRED_CONVERGENCE = "deferred_convergence"
    BATCHABLE = "batchable"
    BATCH_WORKER = "batch_worker"


class BackoffKind(StrEnum):
    NONE = "none"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"
    FIBONACCI = "fibonacci"


class IdentityStrategy(StrEnum):
    STRICT = "strict"
    CALLER_PROVIDED = "caller_provided"
    ALWAYS_UNIQUE = "always_unique"


class FailureStrategy(StrEnum):
    CONTINUE_ON_FAILURE = "continue_on_failure"
    FAIL_FAST = "fail_fast"
    ISOLATE = "isolate"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """templates.md §4. ``max_attempts`` counts every run, the first included."""

    retryable: bool = True
    max_attempts: int = 3
    backoff: BackoffKind = BackoffKind.EXPONENTIAL
    backoff_base_ms: int = 1000
    max_backoff_ms: int = 30000


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """templates.md §3.1: how a worker finds and configures the step's handler."""

    callable: str
    method: str | None = None
    resolver: str | None = None
    initialization: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """templates.md §3.4, read from the ``batch_worker`` step (or its batchable parent)."""

    worker_template: str
    batch_size: int = 1000
    parallelism: int = 10
    cursor_field: str = "id"
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE_ON_FAILURE


@dataclass(frozen=True, slots=True)
class EventDeclaration:
    """templates.md §3.3: a domain event a step publishes after it runs."""

    name: str
    description: str = ""
    schema: Mapping[str, Any] | None = None
    condition: str = "success"
    delivery_mode: str = "durable"
    publisher: str | None = None


@dataclass(frozen=True, slots=True)
class StepTemplate:
    """One named step of a template (templates.md §3)."""

    name: str
    handler: HandlerSpec
    type: StepType = StepType.STANDARD
    dependencies: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: int | None = None
    description: str | None = None
    batch_config: BatchConfig | None = None
    publishes_events: tuple[EventDeclaration, ...] = ()
    system_dependency: str | None = None
    result_schema: Mapping[str, Any] | None = None
    composition: Any = None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """templates.md §5: staleness thresholds in minutes (``None`` = engine default)."""

    max_duration_minutes: int | None = None
    max_waiting_for_dependencies_minutes: int | None = None
    max_waiting_for_retry_minutes: int | None = None
    max_steps_in_process_minutes: int | None = None
    staleness_action: str = "dlq"
    auto_fail_on_timeout: bool | None = None
    auto_dlq_on_timeout: bool | None = None


@dataclass(frozen=True, slots=True)
class StepOverride:
    """One entry of ``environments.<env>.steps`` (templates.md §6).

    ``retry`` holds only the keys present in the override: they are merged into the step's
    policy key by key (our choice, see docs/decisions).
    """

    name: str
    timeout_seconds: int | None = None
    retry: Mapping[str, Any] = field(default_factory=dict)
    initialization: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnvironmentOverride:
    steps: tuple[StepOverride, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskTemplate:
    """A validated workflow type: identity, input contract and steps (templates.md §2)."""

    name: str
    namespace_name: str
    version: str
    steps: tuple[StepTemplate, ...] = ()
    description: str | None = None
    metadata: Mapping[str, Any] | None = None
    system_dependencies: Mapping[str, Any] = field(
        default_factory=lambda: {"primary": "default", "secondary": []}
    )
    domain_events: tuple[Mapping[str, Any], ...] = ()
    input_schema: Mapping[str, Any] | None = None
    environments: Mapping[str, EnvironmentOverride] = field(default_factory=dict)
    lifecycle: Lifecycle | None = None
    identity_strategy: IdentityStrategy = IdentityStrategy.STRICT

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity ``(namespace, name, version)``."""
        return (self.namespace_name, self.name, self.version)

    @property
    def label(self) -> str:
        """``namespace/name@version``, for messages."""
        return f"{self.namespace_name}/{self.name}@{self.version}"

    def step(self, name: str) -> StepTemplate:
        """The step called ``name``.

        Raises:
            KeyError: no such step.
        """
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]


ALL_STEPS = "ALL"
"""Step name in an environment override that targets every step (templates.md §6)."""

_RETRY_FIELDS = frozenset(f.name for f in fields(RetryPolicy))


def resolve_environment(template: TaskTemplate, env: str) -> TaskTemplate:
    """Apply one environment's step overrides (templates.md §6).

    Overrides apply in list order, so a later entry wins over an earlier one (``ALL`` first, then a
    named step, refines that step). ``initialization`` and ``retry`` are merged key by key with
    the override winning; ``timeout_seconds`` replaces. An override for a step the template does
    not have is ignored (the loader has already warned), and so is an unknown environment.

    Args:
        template: the template as loaded.
        env: the environment name the engine runs in (e.g. ``TASKER_ENV``).

    Returns:
        A new template with overrides applied; ``template`` itself if ``env`` has none.
    """
    environment = template.environments.get(env)
    if environment is None or not environment.steps:
        return template
    steps = {step.name: step for step in template.steps}
    for override in environment.steps:
        targets = list(steps) if override.name == ALL_STEPS else [override.name]
        for name in targets:
            if name in steps:
                steps[name] = _apply_override(steps[name], override)
    return replace(template, steps=tuple(steps.values()))


def _apply_override(step: StepTemplate, override: StepOverride) -> StepTemplate:
    handler = step.handler
    if override.initialization:
        handler = replace(
            handler, initialization={**handler.initialization, **override.initialization}
        )
    retry = step.retry
    changes = {k: v for k, v in override.retry.items() if k in _RETRY_FIELDS}
    if changes:
        if "backoff" in changes:
            changes["backoff"] = BackoffKind(changes["backoff"])
        retry = replace(retry, **changes)
    timeout = step.timeout_seconds if override.timeout_seconds is None else override.timeout_seconds
    return replace(step, handler=handler, retry=retry, timeout_seconds=timeout)


# ---------------------------------------------------------------------------------------------
# Stored form. It is itself a valid template document with every default written out, so the
# YAML loader reads it back to an equal template, and it holds only JSON types (dict, list,
# str, int, float, bool, None) because the database stores it and other processes read it.
# ---------------------------------------------------------------------------------------------


def template_to_dict(t: TaskTemplate) -> dict[str, Any]:
    """The template as plain JSON data, for storage.

    Args:
        t: the template.

    Returns:
        A fresh dict (no object shared with ``t``); ``template_from_dict`` inverts it exactly.
    """
    return {
        "name": t.name,
        "namespace_name": t.namespace_name,
        "version": t.version,
        "description": t.description,
        "metadata": _plain(t.metadata),
        "system_dependencies": _plain(t.system_dependencies),
        "domain_events": _plain(t.domain_events),
        "input_schema": _plain(t.input_schema),
        "identity_strategy": t.identity_strategy.value,
        "lifecycle": None if t.lifecycle is None else _lifecycle_to_dict(t.lifecycle),
        "environments": {
            env: {"steps": [_override_to_dict(o) for o in override.steps]}
            for env, override in t.environments.items()
        },
        "steps": [_step_to_dict(step) for step in t.steps],
    }


def template_from_dict(d: Mapping[str, Any]) -> TaskTemplate:
    """Rebuild a template from ``template_to_dict`` output (no validation: the data was valid
    when stored). Keys missing from older stored forms take the field defaults.

    Args:
        d: the stored form.

    Returns:
        The template.

    Raises:
        KeyError: a required key (``name``, ``namespace_name``, ``version``, a step's ``name``
            or ``handler.callable``) is missing.
        ValueError: an enum value is unknown.
    """
    lifecycle = d.get("lifecycle")
    return TaskTemplate(
        name=d["name"],
        namespace_name=d["namespace_name"],
        version=d["version"],
        steps=tuple(_step_from_dict(s) for s in d.get("steps") or ()),
        description=d.get("description"),
        metadata=_plain(d.get("metadata")),
        system_dependencies=_plain(
            d.get("system_dependencies") or {"primary": "default", "secondary": []}
        ),
        domain_events=tuple(_plain(e) for e in d.get("domain_events") or ()),
        input_schema=_plain(d.get("input_schema")),
        environments={
            env: EnvironmentOverride(
                steps=tuple(_override_from_dict(o) for o in (body or {}).get("steps") or ())
            )
            for env, body in (d.get("environments") or {}).items()
        },
        lifecycle=None if lifecycle is None else Lifecycle(**lifecycle),
        identity_strategy=IdentityStrategy(d.get("identity_strategy", "strict")),
    )


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists only."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _retry_to_dict(retry: RetryPolicy) -> dict[str, Any]:
    return {
        "retryable": retry.retryable,
        "max_attempts": retry.max_attempts,
        "backoff": retry.backoff.value,
        "backoff_base_ms": retry.backoff_base_ms,
        "max_backoff_ms": retry.max_backoff_ms,
    }


def _lifecycle_to_dict(lifecycle: Lifecycle) -> dict[str, Any]:
    return {f.name: getattr(lifecycle, f.name) for f in fields(Lifecycle)}


def _override_to_dict(o: StepOverride) -> dict[str, Any]:
    retry = {k: (v.value if isinstance(v, BackoffKind) else v) for k, v in o.retry.items()}
    return {
        "name": o.name,
        "timeout_seconds": o.timeout_seconds,
        "retry": retry,
        "handler": {"initialization": _plain(o.initialization)},
    }


def _override_from_dict(d: Mapping[str, Any]) -> StepOverride:
    retry = dict(d.get("retry") or {})
    if "backoff" in retry:
        retry["backoff"] = BackoffKind(retry["backoff"])
    return StepOverride(
        name=d["name"],
        timeout_seconds=d.get("timeout_seconds"),
        retry=retry,
        initialization=_plain((d.get("handler") or {}).get("initialization") or {}),
    )


def _step_to_dict(s: StepTemplate) -> dict[str, Any]:
    batch = s.batch_config
    return {
        "name": s.name,
        "description": s.description,
        "type": s.type.value,
        "dependencies": list(s.dependencies),
        "handler": {
            "callable": s.handler.callable,
            "method": s.handler.method,
            "resolver": s.handler.resolver,
            "initialization": _plain(s.handler.initialization),
        },
        "retry": _retry_to_dict(s.retry),
        "timeout_seconds": s.timeout_seconds,
        "system_dependency": s.system_dependency,
        "batch_config": None
        if batch is None
        else {
            "worker_template": batch.worker_template,
            "batch_size": batch.batch_size,
            "parallelism": batch.parallelism,
            "cursor_field": batch.cursor_field,
            "failure_strategy": batch.failure_strategy.value,
        },
        "publishes_events": [
            {
                "name": e.name,
                "description": e.description,
                "schema": _plain(e.schema),
                "condition": e.condition,
                "delivery_mode": e.delivery_mode,
                "publisher": e.publisher,
            }
            for e in s.publishes_events
        ],
        "result_schema": _plain(s.result_schema),
        "composition": _plain(s.composition),
    }


def _step_from_dict(d: Mapping[str, Any]) -> StepTemplate:
    handler = d["handler"]
    retry = dict(d.get("retry") or {})
    if "backoff" in retry:
        retry["backoff"] = BackoffKind(retry["backoff"])
    batch = d.get("batch_config")
    return StepTemplate(
        name=d["name"],
        handler=HandlerSpec(
            callable=handler["callable"],
            method=handler.get("method"),
            resolver=handler.get("resolver"),
            initialization=_plain(handler.get("initialization") or {}),
        ),
        type=StepType(d.get("type", "standard")),
        dependencies=tuple(d.get("dependencies") or ()),
        retry=RetryPolicy(**retry),
        timeout_seconds=d.get("timeout_seconds"),
        description=d.get("description"),
        batch_config=None
        if batch is None
        else BatchConfig(
            **{**batch, "failure_strategy": FailureStrategy(batch["failure_strategy"])}
        ),
        publishes_events=tuple(
            EventDeclaration(**{**e, "schema": _plain(e.get("schema"))})
            for e in d.get("publishes_events") or ()
        ),
        system_dependency=d.get("system_dependency"),
        result_schema=_plain(d.get("result_schema")),
        composition=_plain(d.get("composition")),
    )
