"""Dynamic steps: a decision's chosen branches and a batch analyzer's workers.

Applied in the transaction that completes the decision or analyzer step (canonical,
batch-and-decisions.md §1.3 and §2.2): if the outcome is invalid, the step fails permanently
with a message and nothing is created.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tasker.domain.dag import decision_segment
from tasker.domain.states import StepState
from tasker.domain.template import StepTemplate, StepType, TaskTemplate
from tasker.orchestration.creation import insert_step
from tasker.store.base import Transaction

__all__ = ["MAX_STEPS_PER_DECISION", "OutcomeError", "apply_outcome"]

log = logging.getLogger("tasker.orchestration")

MAX_STEPS_PER_DECISION = 100


class OutcomeError(Exception):
    """An outcome the engine cannot apply; the message becomes the step's error."""


def apply_outcome(
    tx: Transaction,
    task_uuid: str,
    template: TaskTemplate,
    step: StepTemplate,
    step_uuid: str,
    result: Any,
    now: datetime,
) -> str | None:
    """Create what a completed decision or batchable step asks for.

    Returns:
        ``None`` when applied (or nothing to do), else the message to fail the step with.
    """
    try:
        if step.type is StepType.DECISION:
            _apply_decision(tx, task_uuid, template, step, step_uuid, result, now)
        elif step.type is StepType.BATCHABLE:
            _apply_batches(tx, task_uuid, template, step, step_uuid, result, now)
    except OutcomeError as exc:
        return str(exc)
    return None


class _TaskSteps:
    """The task's existing steps by name, and the writes that add to them."""

    def __init__(self, tx: Transaction, task_uuid: str, template: TaskTemplate, now: datetime):
        self.tx = tx
        self.task_uuid = task_uuid
        self.template = template
        self.now = now
        rows = tx.task_steps(task_uuid)
        self.uuid_by_name = {s.name: s.workflow_step_uuid for s in rows}
        self.state_by_name = {s.name: s.state for s in rows}
        self.instances: dict[str, list[str]] = {}
        for row in rows:
            if row.template_step_name != row.name:
                self.instances.setdefault(row.template_step_name, []).append(row.name)
        task = tx.get_task(task_uuid)
        self.namespace = task.namespace if task else template.namespace_name
        self.priority = task.priority if task else 0

    def create(
        self, name: str, step: StepTemplate, inputs: Mapping[str, Any] | None = None
    ) -> tuple[str, bool]:
        """Find or create the step ``name``; returns its uuid and whether it is new."""
        existing = self.uuid_by_name.get(name)
        if existing is not None:
            return existing, False
        step_uuid = insert_step(
            self.tx,
            self.task_uuid,
            self.namespace,
            name,
            step,
            self.now,
            inputs=inputs,
            priority=self.priority,
        )
        self.uuid_by_name[name] = step_uuid
        self.state_by_name[name] = StepState.PENDING
        if name != step.name:
            self.instances.setdefault(step.name, []).append(name)
        return step_uuid, True

    def edge(self, parent: str, child: str, kind: str = "provides") -> None:
        self.tx.insert_edge(
            self.task_uuid, self.uuid_by_name[parent], self.uuid_by_name[child], kind, self.now
        )

    def exists(self, name: str) -> bool:
        return name in self.uuid_by_name or bool(self.instances.get(name))

    def wire_late_convergence(self, created: str) -> None:
        """Add an edge to an existing, still pending convergence step that lists ``created``."""
        for conv in self.template.steps:
            if conv.type is not StepType.DEFERRED_CONVERGENCE or created not in conv.dependencies:
                continue
            if conv.name not in self.uuid_by_name:
                continue
            if self.state_by_name.get(conv.name) is StepState.PENDING:
                self.edge(created, conv.name)
            else:
                log.warning(
                    "task %s: convergence step %s already started; %s is not added to it",
                    self.task_uuid,
                    conv.name,
                    created,
                )


# -- decisions ----------------------------------------------------------------------------


def _decision_names(result: Any, decision: str) -> list[str]:
    outcome = result.get("decision_point_outcome") if isinstance(result, Mapping) else None
    if not isinstance(outcome, Mapping):
        raise OutcomeError(
            f"decision step '{decision}' returned no decision_point_outcome in its result"
        )
    kind = outcome.get("type")
    if kind == "no_branches":
        return []
    if kind != "create_steps":
        raise OutcomeError(
            f"decision step '{decision}' returned outcome type {kind!r}; "
            "expected 'create_steps' or 'no_branches'"
        )
    names = outcome.get("step_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise OutcomeError(f"decision step '{decision}': step_names must be a list of names")
    if len(names) > MAX_STEPS_PER_DECISION:
        raise OutcomeError(
            f"decision step '{decision}' asked for {len(names)} steps; "
            f"the limit is {MAX_STEPS_PER_DECISION}"
        )
    return list(dict.fromkeys(names))


def _apply_decision(
    tx: Transaction,
    task_uuid: str,
    template: TaskTemplate,
    decision: StepTemplate,
    decision_uuid: str,  # noqa: ARG001 - the decision's edges are wired by name below
    result: Any,
    now: datetime,
) -> None:
    names = _decision_names(result, decision.name)
    if not names:
        return
    by_name = {s.name: s for s in template.steps}
    segment = decision_segment(decision.name, by_name)
    for name in names:
        if name not in segment:
            raise OutcomeError(
                f"step '{name}' is not a valid descendant of decision point '{decision.name}'"
            )
    chosen = _closure(names, segment, by_name, decision.name)
    steps = _TaskSteps(tx, task_uuid, template, now)
    created = [name for name in chosen if steps.create(name, by_name[name])[1]]
    for name in created:
        step = by_name[name]
        for dependency in step.dependencies:
            if steps.exists(dependency) and dependency in steps.uuid_by_name:
                steps.edge(dependency, name)
            elif step.type is not StepType.DEFERRED_CONVERGENCE:
                steps.edge(decision.name, name)
    for name in created:
        steps.wire_late_convergence(name)


def _closure(
    names: list[str], segment: set[str], by_name: Mapping[str, StepTemplate], decision: str
) -> list[str]:
    """The set C of batch-and-decisions.md §1.3 step 4, in template order."""
    chosen = set(names)
    dynamic = {StepType.DEFERRED_CONVERGENCE, StepType.BATCH_WORKER}
    changed = True
    while changed:
        changed = False
        for name in segment - chosen:
            step = by_name[name]
            if step.type not in dynamic and chosen & set(step.dependencies):
                chosen.add(name)
                changed = True
    for step in by_name.values():
        if step.type is StepType.DEFERRED_CONVERGENCE and chosen & set(step.dependencies):
            chosen.add(step.name)
    # Grow only from the convergence steps: a step behind a boundary decision is that
    # decision's to create, even though all its dependencies are in C.
    grown = {n for n in chosen if by_name[n].type is StepType.DEFERRED_CONVERGENCE}
    changed = True
    while changed:
        changed = False
        for step in by_name.values():
            if step.name in chosen or step.type in dynamic or step.name == decision:
                continue
            deps = set(step.dependencies)
            if deps & grown and deps <= chosen | {decision}:
                chosen.add(step.name)
                grown.add(step.name)
                changed = True
    return [name for name in by_name if name in chosen]


# -- batches ------------------------------------------------------------------------------


def _worker_template(
    template: TaskTemplate, analyzer: StepTemplate, outcome: Mapping[str, Any]
) -> StepTemplate:
    name = outcome.get("worker_template_name")
    if outcome.get("type") == "no_batches" or not name:
        name = analyzer.handler.initialization.get("worker_template_name")
    if not name:
        workers = [
            s
            for s in template.steps
            if s.type is StepType.BATCH_WORKER and analyzer.name in s.dependencies
        ]
        if len(workers) != 1:
            raise OutcomeError(
                f"batchable step '{analyzer.name}': cannot tell which batch_worker template "
                "to use; name it in worker_template_name"
            )
        return workers[0]
    try:
        worker = template.step(str(name))
    except KeyError:
        raise OutcomeError(
            f"batchable step '{analyzer.name}': worker template '{name}' is not a step of "
            f"{template.label}"
        ) from None
    if worker.type is not StepType.BATCH_WORKER:
        raise OutcomeError(f"batchable step '{analyzer.name}': '{name}' is not a batch_worker step")
    return worker


def _cursor_configs(analyzer: str, outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
    configs = outcome.get("cursor_configs")
    if not isinstance(configs, list) or not configs:
        raise OutcomeError(
            f"batchable step '{analyzer}': create_batches needs a non-empty cursor_configs list"
        )
    seen: set[str] = set()
    for config in configs:
        if not isinstance(config, Mapping) or "batch_id" not in config:
            raise OutcomeError(f"batchable step '{analyzer}': every cursor config needs a batch_id")
        batch_id = str(config["batch_id"])
        if batch_id in seen:
            raise OutcomeError(f"batchable step '{analyzer}': batch_id {batch_id!r} is repeated")
        seen.add(batch_id)
    count = outcome.get("worker_count")
    if count is not None and count != len(configs):
        log.warning(
            "batchable step %s: worker_count %s differs from %d cursor configs; using the configs",
            analyzer,
            count,
            len(configs),
        )
    return [dict(c) for c in configs]


def _apply_batches(
    tx: Transaction,
    task_uuid: str,
    template: TaskTemplate,
    analyzer: StepTemplate,
    analyzer_uuid: str,  # noqa: ARG001 - edges are wired by name
    result: Any,
    now: datetime,
) -> None:
    outcome = result.get("batch_processing_outcome") if isinstance(result, Mapping) else None
    if not isinstance(outcome, Mapping) or outcome.get("type") not in (
        "create_batches",
        "no_batches",
    ):
        raise OutcomeError(
            f"batchable step '{analyzer.name}' returned no valid batch_processing_outcome "
            "(type must be 'create_batches' or 'no_batches')"
        )
    if any(
        kind == "batch_dependency" and parent == analyzer.name
        for parent, _child, kind in tx.task_edges(task_uuid)
    ):
        return  # already expanded (A7)
    worker = _worker_template(template, analyzer, outcome)
    config = worker.batch_config or analyzer.batch_config
    if config is None:
        raise OutcomeError(
            f"batch_worker step '{worker.name}' and its analyzer '{analyzer.name}' have no "
            "batch_config"
        )
    if outcome.get("type") == "create_batches":
        cursors, no_op = _cursor_configs(analyzer.name, outcome), False
    else:
        cursors = [{"batch_id": "000", "start_cursor": 0, "end_cursor": 0, "batch_size": 0}]
        no_op = True
    steps = _TaskSteps(tx, task_uuid, template, now)
    metadata = {
        "cursor_field": config.cursor_field,
        "failure_strategy": config.failure_strategy.value,
    }
    workers: list[str] = []
    for cursor in cursors:
        name = f"{worker.name}_{cursor['batch_id']}"
        inputs = {
            **dict(worker.handler.initialization),
            "cursor": cursor,
            "batch_metadata": metadata,
            "is_no_op": no_op,
            "__template_step_name": worker.name,
        }
        steps.create(name, worker, inputs)
        steps.edge(analyzer.name, name, "batch_dependency")
        workers.append(name)
    _create_batch_convergence(steps, template, worker, workers)


def _create_batch_convergence(
    steps: _TaskSteps, template: TaskTemplate, worker: StepTemplate, workers: list[str]
) -> None:
    """Create the convergence steps that wait on every instance of the worker template."""
    for conv in template.steps:
        if conv.type is not StepType.DEFERRED_CONVERGENCE or worker.name not in conv.dependencies:
            continue
        steps.create(conv.name, conv)
        for name in workers:
            steps.edge(name, conv.name, "worker_to_convergence")
        for dependency in conv.dependencies:
            if dependency != worker.name and dependency in steps.uuid_by_name:
                steps.edge(dependency, conv.name)
        _create_followers(steps, conv.name)
        _converge_on(steps, conv.name)


def _converge_on(steps: _TaskSteps, created: str) -> None:
    """Find-or-create the deferred convergence steps that list ``created`` (§1.4).

    A convergence step is created with the first of its dependencies to exist, whichever
    expansion made it, and waits for those of its dependencies that exist; one that already
    exists and is still pending gets the late edge.
    """
    steps.wire_late_convergence(created)
    for join in steps.template.steps:
        if join.type is not StepType.DEFERRED_CONVERGENCE or created not in join.dependencies:
            continue
        if join.name in steps.uuid_by_name:
            continue
        steps.create(join.name, join)
        for dependency in join.dependencies:
            if dependency in steps.uuid_by_name:
                steps.edge(dependency, join.name)
        _create_followers(steps, join.name)
        _converge_on(steps, join.name)


def _create_followers(steps: _TaskSteps, created: str) -> None:
    """Create plain steps that wait on a dynamically created step once all their parents exist."""
    frontier = [created]
    while frontier:
        parent = frontier.pop()
        for step in steps.template.steps:
            if parent not in step.dependencies or step.name in steps.uuid_by_name:
                continue
            if step.type in (StepType.BATCH_WORKER, StepType.DEFERRED_CONVERGENCE):
                continue
            if not all(d in steps.uuid_by_name for d in step.dependencies):
                continue
            steps.create(step.name, step)
            for dependency in step.dependencies:
                steps.edge(dependency, step.name)
            frontier.append(step.name)
