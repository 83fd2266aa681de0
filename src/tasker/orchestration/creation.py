"""Task creation: validate, then write the task, its steps, edges and first transitions at once.

Everything happens in the caller's transaction (execution.md §2, R6.3): a rejected request or a
duplicate leaves every table as it was. The task is also started and its root steps enqueued in
that same transaction, so a created task is never seen half-initialised.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema

from tasker.domain.dag import initial_step_names
from tasker.domain.identity import check_json_limits, identity_hash
from tasker.domain.model import TaskRequest
from tasker.domain.states import TaskState
from tasker.domain.template import StepTemplate, TaskTemplate
from tasker.errors import DuplicateTask, InvalidContext
from tasker.orchestration.lifecycle import evaluate_locked_task
from tasker.orchestration.templates import TemplateCache
from tasker.store.base import Transaction
from tasker.store.sql import LockedTask, new_uuid

__all__ = ["CreatedTask", "create_steps", "create_task", "insert_step", "validate_request"]


@dataclass(frozen=True, slots=True)
class CreatedTask:
    task_uuid: str
    step_count: int
    state: TaskState


def validate_request(request: TaskRequest, template: TaskTemplate) -> None:
    """Check a request against the JSON limits and the template's ``input_schema``.

    Raises:
        InvalidContext: one line naming the problem and its JSON path.
    """
    check_json_limits(request.context, "context")
    check_json_limits(list(request.tags), "tags", require_object=False)
    if not all(isinstance(tag, str) for tag in request.tags):
        raise InvalidContext("tags must be a list of strings")
    if not -100 <= request.priority <= 100:
        raise InvalidContext(f"priority must be between -100 and 100, got {request.priority}")
    if template.input_schema is not None:
        validator = jsonschema.Draft202012Validator(dict(template.input_schema))
        error = jsonschema.exceptions.best_match(validator.iter_errors(request.context))
        if error is not None:
            where = error.json_path
            raise InvalidContext(
                f"context does not match the input_schema of {template.label} at {where}: "
                f"{error.message}"
            )


def create_task(
    tx: Transaction, templates: TemplateCache, request: TaskRequest, now: datetime
) -> CreatedTask:
    """Create, start and first-evaluate a task.

    Raises:
        TemplateNotFound: no such template.
        InvalidContext: the context or tags break a rule; nothing was written.
        DuplicateTask: a task with the same identity exists; carries its ``task_uuid``.
    """
    named_task_uuid, template = templates.by_key(
        tx, request.namespace, request.name, request.version
    )
    validate_request(request, template)
    digest = identity_hash(
        named_task_uuid, template.identity_strategy, request.context, request.idempotency_key
    )
    task_uuid = new_uuid()
    inserted = tx.insert_task(
        {
            "task_uuid": task_uuid,
            "named_task_uuid": named_task_uuid,
            "namespace": template.namespace_name,
            "name": template.name,
            "version": template.version,
            "context": request.context,
            "identity_hash": digest,
            "initiator": request.initiator,
            "source_system": request.source_system,
            "reason": request.reason,
            "tags": list(request.tags),
            "priority": request.priority,
            "correlation_id": request.correlation_id or str(uuid.uuid4()),
            "parent_correlation_id": request.parent_correlation_id,
        },
        now,
        {"initial_state": "pending", "from_service": "task_initializer"},
    )
    if not inserted:
        existing = tx.task_by_identity(digest) or ""
        raise DuplicateTask(
            f"a task with the same identity already exists: {existing}", task_uuid=existing
        )
    task = LockedTask(task_uuid, TaskState.PENDING, template.namespace_name, named_task_uuid)
    steps = [template.step(name) for name in initial_step_names(template)]
    create_steps(tx, task, template, steps, now, priority=request.priority)
    state = evaluate_locked_task(tx, task, now)
    return CreatedTask(task_uuid=task_uuid, step_count=len(steps), state=state)


def insert_step(
    tx: Transaction,
    task_uuid: str,
    namespace: str,
    name: str,
    step: StepTemplate,
    now: datetime,
    *,
    inputs: Mapping[str, Any] | None = None,
    priority: int = 0,
) -> str:
    """Insert one step of template ``step`` (named ``name``); the store writes its
    ``null -> pending`` row."""
    step_uuid = new_uuid()
    values = dict(step.handler.initialization) if inputs is None else dict(inputs)
    tx.insert_step(
        {
            "workflow_step_uuid": step_uuid,
            "task_uuid": task_uuid,
            "name": name,
            "template_step_name": step.name,
            "namespace": namespace,
            "retryable": step.retry.retryable,
            "max_attempts": step.retry.max_attempts,
            "inputs": values or None,
            "priority": priority,
        },
        now,
    )
    return step_uuid


def create_steps(
    tx: Transaction,
    task: LockedTask,
    template: TaskTemplate,
    steps: list[StepTemplate],
    now: datetime,
    *,
    priority: int = 0,
) -> dict[str, str]:
    """Insert the initial steps and the ``provides`` edges between them.

    Returns:
        Step name to step uuid.
    """
    by_name = {
        step.name: insert_step(
            tx, task.task_uuid, template.namespace_name, step.name, step, now, priority=priority
        )
        for step in steps
    }
    for step in steps:
        for dependency in step.dependencies:
            parent = by_name.get(dependency)
            if parent is not None:
                tx.insert_edge(task.task_uuid, parent, by_name[step.name], "provides", now)
    return by_name
