"""Attribute-style views of the ``task_sequence_step`` dict (python-api.md §2.4, §2.5).

Ported handlers read ``context.task_sequence_step.task.namespace_name`` and similar; these
wrappers give them that shape over the plain dict the engine builds. They are read-only views:
building one copies nothing deep and never raises on missing keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DependencyResultsWrapper",
    "HandlerWrapper",
    "StepDefinitionWrapper",
    "TaskSequenceStepWrapper",
    "TaskWrapper",
    "WorkflowStepWrapper",
    "unwrap_result",
]


def unwrap_result(entry: Any) -> Any:
    """The handler output inside a stored result envelope: ``entry["result"]`` if present.

    Only one level is unwrapped; anything that is not a dict with a ``"result"`` key is
    returned as is (``None`` included).
    """
    if isinstance(entry, dict) and "result" in entry:
        return entry["result"]
    return entry


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class HandlerWrapper:
    """The ``handler`` block of a step definition; YAML key ``method`` is ``handler_method``."""

    callable: str
    initialization: dict[str, Any] = field(default_factory=dict)
    handler_method: str | None = None
    resolver: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> HandlerWrapper:
        """Build from the template dict (missing keys take their defaults)."""
        data = _as_dict(data)
        return cls(
            callable=data.get("callable") or "",
            initialization=_as_dict(data.get("initialization")),
            handler_method=data.get("method") or data.get("handler_method"),
            resolver=data.get("resolver"),
        )


@dataclass
class StepDefinitionWrapper:
    """The template's definition of the step being run."""

    name: str
    description: str
    handler: HandlerWrapper
    dependencies: list[str] = field(default_factory=list)
    retry: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: int = 30
    publishes_events: list[Any] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> StepDefinitionWrapper:
        """Build from the step-definition dict."""
        data = _as_dict(data)
        timeout = data.get("timeout_seconds")
        return cls(
            name=data.get("name") or "",
            description=data.get("description") or "",
            handler=HandlerWrapper.from_dict(data.get("handler")),
            dependencies=list(data.get("dependencies") or []),
            retry=_as_dict(data.get("retry")),
            timeout_seconds=30 if timeout is None else timeout,
            publishes_events=list(data.get("publishes_events") or []),
        )


@dataclass
class DependencyResultsWrapper:
    """Results of completed ancestors, keyed by step name.

    ``get_result`` / ``[name]`` give the stored envelope; ``get_results`` the handler output.
    """

    _results: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DependencyResultsWrapper:
        """Wrap the ``dependency_results`` dict."""
        return cls(_results=_as_dict(data))

    def get_result(self, step_name: str) -> Any:
        """The raw envelope stored for ``step_name``, or ``None``."""
        return self._results.get(step_name)

    def get_results(self, step_name: str) -> Any:
        """The handler output of ``step_name`` (envelope unwrapped one level), or ``None``."""
        return unwrap_result(self._results.get(step_name))

    def __getitem__(self, step_name: str) -> Any:
        return self.get_result(step_name)

    def keys(self) -> list[str]:
        """Names of the steps with results."""
        return list(self._results)

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __contains__(self, step_name: object) -> bool:
        return step_name in self._results

    def __len__(self) -> int:
        return len(self._results)


@dataclass
class WorkflowStepWrapper:
    """The step row as read before this run's claim (``attempts`` excludes this run)."""

    workflow_step_uuid: str
    task_uuid: str
    name: str
    named_step_uuid: str | None = None
    template_step_name: str | None = None
    retryable: bool = True
    max_attempts: int = 3
    in_process: bool = False
    processed: bool = False
    processed_at: Any = None
    attempts: int = 0
    last_attempted_at: Any = None
    backoff_request_seconds: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    created_at: Any = None
    updated_at: Any = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WorkflowStepWrapper:
        """Build from the ``workflow_step`` dict; nulls take the defaults."""
        data = _as_dict(data)
        checkpoint = data.get("checkpoint")
        return cls(
            workflow_step_uuid=str(data.get("workflow_step_uuid") or ""),
            task_uuid=str(data.get("task_uuid") or ""),
            name=data.get("name") or "",
            named_step_uuid=data.get("named_step_uuid"),
            template_step_name=data.get("template_step_name"),
            retryable=data.get("retryable") is not False,
            max_attempts=_int_or(data.get("max_attempts"), 3),
            in_process=bool(data.get("in_process")),
            processed=bool(data.get("processed")),
            processed_at=data.get("processed_at"),
            attempts=_int_or(data.get("attempts"), 0),
            last_attempted_at=data.get("last_attempted_at"),
            backoff_request_seconds=data.get("backoff_request_seconds"),
            inputs=_as_dict(data.get("inputs")),
            results=_as_dict(data.get("results")),
            checkpoint=checkpoint if isinstance(checkpoint, dict) else None,
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
        )


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)


@dataclass
class TaskWrapper:
    """The task: its row fields sit under ``task.task``; names beside it (§2.4)."""

    task_uuid: str
    context: dict[str, Any] = field(default_factory=dict)
    namespace_name: str = ""
    task_name: str = ""
    task_version: str = ""
    correlation_id: str | None = None
    parent_correlation_id: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TaskWrapper:
        """Build from the outer ``task`` dict (a flat task row is accepted too)."""
        data = _as_dict(data)
        row = _as_dict(data.get("task")) or data
        correlation = row.get("correlation_id")
        parent = row.get("parent_correlation_id")
        return cls(
            task_uuid=str(row.get("task_uuid") or ""),
            context=_as_dict(row.get("context")),
            namespace_name=data.get("namespace_name") or row.get("namespace_name") or "",
            task_name=data.get("task_name") or row.get("task_name") or "",
            task_version=data.get("task_version") or row.get("task_version") or "",
            correlation_id=None if correlation is None else str(correlation),
            parent_correlation_id=None if parent is None else str(parent),
        )


@dataclass
class TaskSequenceStepWrapper:
    """Everything the engine hands a worker for one step run."""

    task: TaskWrapper
    workflow_step: WorkflowStepWrapper
    dependency_results: DependencyResultsWrapper
    step_definition: StepDefinitionWrapper

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TaskSequenceStepWrapper:
        """Wrap a ``task_sequence_step`` dict."""
        data = _as_dict(data)
        return cls(
            task=TaskWrapper.from_dict(data.get("task")),
            workflow_step=WorkflowStepWrapper.from_dict(data.get("workflow_step")),
            dependency_results=DependencyResultsWrapper.from_dict(data.get("dependency_results")),
            step_definition=StepDefinitionWrapper.from_dict(data.get("step_definition")),
        )

    def get_task_field(self, field_name: str) -> Any:
        """A key of the task context, or ``None``."""
        return self.task.context.get(field_name)

    def get_dependency_result(self, step_name: str) -> Any:
        """The handler output of an ancestor step (unwrapped), or ``None``."""
        return self.dependency_results.get_results(step_name)

    def get_results(self, step_name: str) -> Any:
        """Alias of ``get_dependency_result``."""
        return self.get_dependency_result(step_name)
