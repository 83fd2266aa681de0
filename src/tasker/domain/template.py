"""Task and step templates as immutable values, with the graph rules that make a template valid.

Parsing YAML (files, line numbers, legacy keys) lives in ``tasker.templates``; this module only
knows the validated shape and how to resolve environment overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
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
