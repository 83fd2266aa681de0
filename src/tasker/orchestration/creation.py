"""Task creation: validate, then write the task, its steps, edges and first transitions at once.

Everything happens in the caller's transaction (execution.md §2, R6.3): a rejected request or a
duplicate leaves every table as it was. The task is also started and its root steps enqueued in
that same transaction, so a created task is never seen half-initialised.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema

from tasker.domain.dag import initial_step_names
from tasker.domain.identity import check_json_limits, identity_hash
from tasker.domain.model import JSONObject, TaskRequest
from tasker.domain.states import TaskEvent, TaskState, next_task_state
from tasker.domain.template import StepTemplate, TaskTemplate
from tasker.errors import DuplicateTask, InvalidContext, TaskerError
from tasker.orchestration.templates import TemplateCache
from tasker.store.base import Transaction
from tasker.store.sql import NewStep, NewTask, new_uuid

__all__ = ["CreatedTask", "create_task", "create_tasks", "insert_step", "validate_request"]

# Inputs are stored as compact JSON text, as the store's own encoder writes them.
_JSON = json.JSONEncoder(separators=(",", ":"))


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
    _validate(request, template, _plan(template).validator)


def _validate(
    request: TaskRequest,
    template: TaskTemplate,
    validator: jsonschema.protocols.Validator | None,
) -> None:
    check_json_limits(request.context, "context")
    check_json_limits(list(request.tags), "tags", require_object=False)
    if not all(isinstance(tag, str) for tag in request.tags):
        raise InvalidContext("tags must be a list of strings")
    if not -100 <= request.priority <= 100:
        raise InvalidContext(f"priority must be between -100 and 100, got {request.priority}")
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(request.context))
        if error is not None:
            where = error.json_path
            raise InvalidContext(
                f"context does not match the input_schema of {template.label} at {where}: "
                f"{error.message}"
            )


@dataclass(frozen=True, slots=True)
class _StepPlan:
    """What every task of a template writes for one initial step (all but the uuids)."""

    name: str
    retryable: bool
    max_attempts: int
    inputs: str | None  # JSON text
    parents: tuple[int, ...]  # positions of the initial steps it depends on


@dataclass(frozen=True, slots=True)
class _Plan:
    """A template's initial steps, their edges and which ones are ready at creation, worked
    out once per template instead of once per task."""

    template: TaskTemplate  # held so that its id() is not reused while the plan is cached
    steps: tuple[_StepPlan, ...]
    validator: jsonschema.protocols.Validator | None


_PLANS: dict[int, _Plan] = {}
_MAX_PLANS = 1024


def _plan(template: TaskTemplate) -> _Plan:
    plan = _PLANS.get(id(template))
    if plan is not None and plan.template is template:
        return plan
    names = initial_step_names(template)
    position = {name: index for index, name in enumerate(names)}
    steps = []
    for name in names:
        step = template.step(name)
        inputs = dict(step.handler.initialization)
        steps.append(
            _StepPlan(
                name=step.name,
                retryable=step.retry.retryable,
                max_attempts=step.retry.max_attempts,
                inputs=_JSON.encode(inputs) if inputs else None,
                parents=tuple(position[d] for d in step.dependencies if d in position),
            )
        )
    validator = None
    if template.input_schema is not None:
        validator = jsonschema.Draft202012Validator(dict(template.input_schema))
    plan = _Plan(template, tuple(steps), validator)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(template)] = plan
    return plan


def create_task(
    tx: Transaction,
    templates: TemplateCache,
    request: TaskRequest,
    now: datetime,
    *,
    predict: bool = False,
) -> CreatedTask:
    """Create, start and first-evaluate a task.

    The task's first orchestration pass is decided here rather than by a pass over the
    written rows: a new task's ready steps are exactly its initial steps without a parent
    among them. So the task row is inserted in the state that pass would leave it in (with
    every transition row it would have written), the root steps are inserted ``enqueued``,
    and all steps and edges are one statement each (docs/decisions/0011).

    Raises:
        TemplateNotFound: no such template.
        InvalidContext: the context or tags break a rule; nothing was written.
        DuplicateTask: a task with the same identity exists; carries its ``task_uuid``.
        PassMispredicted: with ``predict`` (that the task is new, so that the store need not
            wait for the insert: one round trip on PostgreSQL, ADR 0023), the identity existed
            after all; the transaction rolled back, redo it without predicting to learn which
            task holds it.
    """
    prepared = _prepare(tx, templates, request)
    duplicate = _write(tx, [prepared], now, predict=predict)
    if duplicate is not None:
        raise duplicate[1]
    return prepared.created


def create_tasks(
    tx: Transaction,
    templates: TemplateCache,
    requests: Sequence[TaskRequest],
    now: datetime,
    *,
    predict: bool = False,
) -> list[CreatedTask]:
    """Create several tasks in the caller's transaction: all of them or, on the first bad
    request, none (the caller rolls back).

    Every request is checked before anything is written; then all tasks are one statement,
    all their steps one, all their edges one (per few hundred rows), so a call costs what
    one ``create_task`` costs plus the rows (docs/decisions/0013).

    Raises:
        TemplateNotFound, InvalidContext, DuplicateTask: as ``create_task``, the message
            prefixed with the request's position (``request 3: ...``). A request that repeats
            the identity of an earlier one in the same call is a duplicate too.
        PassMispredicted: as ``create_task``'s.
    """
    prepared = []
    for index, request in enumerate(requests):
        try:
            prepared.append(_prepare(tx, templates, request))
        except TaskerError as exc:
            raise _at_request(index, exc) from exc
    duplicate = _write(tx, prepared, now, predict=predict)
    if duplicate is not None:
        position, error = duplicate
        raise _at_request(position, error) from error
    return [task.created for task in prepared]


def _at_request(index: int, exc: TaskerError) -> TaskerError:
    """The same error, its message naming the request it is about."""
    message = f"request {index}: {exc.message}"
    if isinstance(exc, DuplicateTask):
        return DuplicateTask(message, task_uuid=exc.task_uuid)
    located = type(exc)(message)
    located.metadata = exc.metadata
    return located


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A checked request and every row it will write."""

    task: NewTask
    identity_hash: str
    namespace: str
    priority: int
    steps: list[NewStep]
    edges: list[tuple[str, str]]
    ready: list[str]
    created: CreatedTask


def _prepare(tx: Transaction, templates: TemplateCache, request: TaskRequest) -> _Prepared:
    """Check a request and work out its rows and its first pass; writes nothing."""
    named_task_uuid, template = templates.by_key(
        tx, request.namespace, request.name, request.version
    )
    plan = _plan(template)
    _validate(request, template, plan.validator)
    digest = identity_hash(
        named_task_uuid, template.identity_strategy, request.context, request.idempotency_key
    )
    task_uuid = new_uuid()
    step_uuids = [new_uuid() for _ in plan.steps]
    ready = [uuid for uuid, step in zip(step_uuids, plan.steps, strict=True) if not step.parents]
    moves = _first_pass(len(step_uuids), ready)
    values = {
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
    }
    steps = [
        NewStep(
            workflow_step_uuid=step_uuid,
            name=step.name,
            template_step_name=step.name,
            retryable=step.retryable,
            max_attempts=step.max_attempts,
            inputs=step.inputs,
            enqueue=not step.parents,
        )
        for step_uuid, step in zip(step_uuids, plan.steps, strict=True)
    ]
    edges = [
        (step_uuids[parent], step_uuid)
        for step_uuid, step in zip(step_uuids, plan.steps, strict=True)
        for parent in step.parents
    ]
    return _Prepared(
        task=NewTask(values, moves),
        identity_hash=digest,
        namespace=template.namespace_name,
        priority=request.priority,
        steps=steps,
        edges=edges,
        ready=ready,
        created=CreatedTask(task_uuid=task_uuid, step_count=len(step_uuids), state=moves[-1][0]),
    )


def _write(
    tx: Transaction, tasks: Sequence[_Prepared], now: datetime, *, predict: bool
) -> tuple[int, DuplicateTask] | None:
    """Write the tasks, their steps and edges; returns the position and error of the first
    duplicate instead (the caller raises it, and its transaction rolls back)."""
    inserted = tx.insert_tasks(
        [task.task for task in tasks],
        now,
        {"initial_state": "pending", "from_service": "task_initializer"},
        expect_all=predict,
    )
    for index, task in enumerate(tasks):
        if task.created.task_uuid not in inserted:
            existing = tx.task_by_identity(task.identity_hash) or ""
            return index, DuplicateTask(
                f"a task with the same identity already exists: {existing}", task_uuid=existing
            )
    with_steps = [task for task in tasks if task.steps]
    if with_steps:
        tx.insert_task_steps(
            [(t.created.task_uuid, t.namespace, t.priority, t.steps) for t in with_steps], now
        )
    edges = [(a, b, task.created.task_uuid) for task in tasks for a, b in task.edges]
    if edges:
        tx.insert_task_edges(edges, "provides", now)
    for task in tasks:
        if task.ready:
            tx.wake_namespaces.add(task.namespace)
            tx.enqueued_step_uuids.update(task.ready)
    return None


def _first_pass(
    step_count: int, ready: list[str]
) -> list[tuple[TaskState, str, JSONObject | None]]:
    """The transitions a new task's first orchestration pass makes (``evaluate_locked_task``
    from ``pending``: start, then what initializing finds), checked against the state table."""
    moves: list[tuple[TaskState, str, JSONObject | None]] = []
    state = TaskState.PENDING

    def move(event: TaskEvent, metadata: JSONObject | None = None) -> None:
        nonlocal state
        state = next_task_state(state, event)
        moves.append((state, event.value, metadata))

    move(TaskEvent.START)
    if ready:
        move(TaskEvent.READY_STEPS_FOUND)
        move(TaskEvent.STEPS_ENQUEUED, {"step_uuids": list(ready)})
    elif step_count == 0:
        move(TaskEvent.NO_STEPS_FOUND)
    else:
        move(TaskEvent.NO_DEPENDENCIES_READY)
    return moves


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
