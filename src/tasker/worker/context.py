"""What a handler may read about the step it runs (python-api.md §2, seed step-context-api).

``StepContext`` keeps the original's shape exactly, down to which members are properties and
which are methods (``context.checkpoint_cursor or 0`` but ``context.has_checkpoint()``), because
ported handlers depend on it. No accessor raises on missing data.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from tasker.worker.models import TaskSequenceStepWrapper, unwrap_result

__all__ = ["FfiStepEvent", "StepContext"]

_DEFAULT_MAX_ATTEMPTS = 3


class FfiStepEvent(BaseModel):
    """One step run as the worker received it; ``task_sequence_step`` is the §2.4 dict.

    The name is the original's (its events crossed a Rust FFI boundary); ported tests build it.
    """

    event_id: str
    task_uuid: str
    step_uuid: str
    correlation_id: str
    task_correlation_id: str | None = None
    parent_correlation_id: str | None = None
    task_sequence_step: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None
    span_id: str | None = None


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _event_from_fields(data: dict[str, Any]) -> dict[str, Any]:
    """An event whose ``task_sequence_step`` mirrors directly given fields (tests, ports)."""
    task_uuid, step_uuid = str(data["task_uuid"]), str(data["step_uuid"])
    correlation_id = str(data["correlation_id"])
    handler_name = data.get("handler_name") or ""
    tss = {
        "task": {
            "task": {
                "task_uuid": task_uuid,
                "context": data.get("input_data") or {},
                "correlation_id": correlation_id,
            },
        },
        "workflow_step": {
            "workflow_step_uuid": step_uuid,
            "task_uuid": task_uuid,
            "name": handler_name,
            "attempts": data.get("retry_count", 0),
            "max_attempts": data.get("max_retries", _DEFAULT_MAX_ATTEMPTS),
            "inputs": data.get("step_inputs") or {},
            "checkpoint": None,
        },
        "dependency_results": data.get("dependency_results") or {},
        "step_definition": {
            "name": handler_name,
            "handler": {"callable": handler_name, "initialization": data.get("step_config") or {}},
        },
    }
    return {
        "event_id": str(uuid.uuid4()),
        "task_uuid": task_uuid,
        "step_uuid": step_uuid,
        "correlation_id": correlation_id,
        "task_sequence_step": tss,
    }


class StepContext(BaseModel):
    """The data one handler run may read: task input, ancestors' results, config, retries.

    Build it with ``from_task_sequence_step`` (the engine) or with keyword fields (tests); then
    ``correlation_id`` defaults to the task uuid and ``event`` to one mirroring the fields.
    """

    # ``event`` and ``correlation_id`` are optional in the constructor only: ``_fill_defaults``
    # supplies them from the other fields before validation, so a valid context never holds None.
    event: FfiStepEvent = None  # type: ignore[assignment]  # filled by _fill_defaults
    task_uuid: UUID
    step_uuid: UUID
    correlation_id: UUID = None  # type: ignore[assignment]  # filled by _fill_defaults
    handler_name: str
    input_data: dict[str, Any] = Field(default_factory=dict)
    dependency_results: dict[str, Any] = Field(default_factory=dict)
    step_config: dict[str, Any] = Field(default_factory=dict)
    step_inputs: dict[str, Any] = Field(default_factory=dict)
    retry_count: int = 0
    max_retries: int = _DEFAULT_MAX_ATTEMPTS

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if (
            not isinstance(data, dict)
            or data.get("task_uuid") is None
            or data.get("step_uuid") is None
        ):
            return data
        data = dict(data)
        if data.get("correlation_id") is None:
            event = data.get("event")
            given = event.correlation_id if isinstance(event, FfiStepEvent) else None
            data["correlation_id"] = given or data["task_uuid"]
        if data.get("event") is None:
            data["event"] = _event_from_fields(data)
        return data

    @classmethod
    def from_ffi_event(cls, event: FfiStepEvent, handler_name: str) -> StepContext:
        """Build the context from an event (mapping of python-api.md §2.1).

        Args:
            event: the event; its ``task_sequence_step`` holds the §2.4 dict.
            handler_name: the resolved handler's name.

        Returns:
            The context; nulls become ``{}``, ``0`` attempts and ``3`` max attempts.
        """
        tss = event.task_sequence_step
        task_row = _as_dict(_as_dict(tss.get("task")).get("task"))
        step_row = _as_dict(tss.get("workflow_step"))
        handler = _as_dict(_as_dict(tss.get("step_definition")).get("handler"))
        attempts, max_attempts = step_row.get("attempts"), step_row.get("max_attempts")
        return cls(
            event=event,
            task_uuid=UUID(event.task_uuid),
            step_uuid=UUID(event.step_uuid),
            correlation_id=UUID(event.correlation_id),
            handler_name=handler_name,
            input_data=_as_dict(task_row.get("context")),
            dependency_results=_as_dict(tss.get("dependency_results")),
            step_config=_as_dict(handler.get("initialization")),
            step_inputs=_as_dict(step_row.get("inputs")),
            retry_count=0 if attempts is None else attempts,
            max_retries=_DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts,
        )

    @classmethod
    def from_task_sequence_step(
        cls, tss: dict[str, Any], handler_name: str, *, event_id: str | None = None
    ) -> StepContext:
        """Build the context for one run from the dict the engine assembles (§2.4).

        Args:
            tss: ``{"task": {"task": row, ...names}, "workflow_step": row (attempts as read
                before this run's claim), "dependency_results": {...}, "step_definition": {...}}``.
            handler_name: the resolved handler's name.
            event_id: id of the dispatch that caused the run; a fresh uuid when omitted.

        Returns:
            The context, with ``event`` wrapping ``tss`` itself.
        """
        task_row = _as_dict(_as_dict(tss.get("task")).get("task"))
        step_row = _as_dict(tss.get("workflow_step"))
        task_uuid = str(task_row.get("task_uuid") or step_row.get("task_uuid"))
        correlation = task_row.get("correlation_id")
        parent = task_row.get("parent_correlation_id")
        event = FfiStepEvent(
            event_id=event_id or str(uuid.uuid4()),
            task_uuid=task_uuid,
            step_uuid=str(step_row.get("workflow_step_uuid")),
            correlation_id=str(correlation or task_uuid),
            task_correlation_id=None if correlation is None else str(correlation),
            parent_correlation_id=None if parent is None else str(parent),
            task_sequence_step=tss,
        )
        return cls.from_ffi_event(event, handler_name)

    # -- task input and config -------------------------------------------------------------

    def get_input(self, key: str) -> Any:
        """A key of the task context, or ``None``."""
        return self.input_data.get(key)

    def get_input_or(self, key: str, default: Any = None) -> Any:
        """A key of the task context; ``default`` when absent or ``None`` (not when falsy)."""
        value = self.input_data.get(key)
        return default if value is None else value

    def get_config(self, key: str) -> Any:
        """A key of the step's ``handler.initialization``, or ``None``."""
        return self.step_config.get(key)

    # -- dependency results ----------------------------------------------------------------

    def get_dependency_result(self, step_name: str) -> Any:
        """The handler output of an ancestor (its envelope's ``result``), or ``None``."""
        return unwrap_result(self.dependency_results.get(step_name))

    def get_dependency_field(self, step_name: str, *path: str) -> Any:
        """A nested field of an ancestor's output; ``None`` as soon as a level is missing.

        Descends through dicts only (no list indexing); an empty path gives the whole output.
        """
        value = self.get_dependency_result(step_name)
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def get_dependency_result_keys(self) -> list[str]:
        """Names of the ancestors that have results."""
        return list(self.dependency_results)

    def get_all_dependency_results(self, prefix: str) -> list[Any]:
        """Outputs of the ancestors whose name starts with ``prefix`` (batch workers), in order.

        Ancestors without output (``None``) are left out.
        """
        outputs = (
            unwrap_result(entry)
            for name, entry in self.dependency_results.items()
            if name.startswith(prefix)
        )
        return [output for output in outputs if output is not None]

    # -- retries ---------------------------------------------------------------------------

    def is_retry(self) -> bool:
        """Whether an earlier attempt of this step ran."""
        return self.retry_count > 0

    def is_last_retry(self) -> bool:
        """Whether this is the last attempt allowed (true on the first run if only one is)."""
        return self.retry_count >= self.max_retries - 1

    # -- checkpoints -----------------------------------------------------------------------

    @property
    def checkpoint(self) -> dict[str, Any] | None:
        """The step's checkpoint (``cursor``, ``items_processed``, ...), or ``None``."""
        step_row = _as_dict(self.event.task_sequence_step.get("workflow_step"))
        checkpoint = step_row.get("checkpoint")
        return checkpoint if isinstance(checkpoint, dict) else None

    @property
    def checkpoint_cursor(self) -> Any:
        """Where the last checkpoint stopped (int, str or dict), or ``None``."""
        return (self.checkpoint or {}).get("cursor")

    @property
    def checkpoint_items_processed(self) -> int:
        """Items processed up to the last checkpoint; ``0`` without one."""
        items = (self.checkpoint or {}).get("items_processed", 0)
        return 0 if items is None else int(items)

    @property
    def accumulated_results(self) -> Any:
        """Running totals saved with the last checkpoint, or ``None``."""
        return (self.checkpoint or {}).get("accumulated_results")

    def has_checkpoint(self) -> bool:
        """Whether a checkpoint with a cursor exists (a method, unlike the properties)."""
        return self.checkpoint_cursor is not None

    @property
    def task_sequence_step(self) -> TaskSequenceStepWrapper:
        """Attribute-style view of the whole run data (``.task.namespace_name``, ...)."""
        return TaskSequenceStepWrapper.from_dict(self.event.task_sequence_step)
