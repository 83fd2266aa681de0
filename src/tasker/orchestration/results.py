"""Results: a run's outcome recorded under its claim, and the task advanced in the same pass.

The worker that ran a step records its result and, in the same transaction, orchestration
processes it (complete, retry with backoff, or error; decision and batch outcomes) and advances
the task: one commit per step result (execution.md §6 in one pass). A result whose claim was
superseded changes nothing (R1.4). Expired leases are swept here too, as the failures their
workers would have recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tasker.domain.model import Claim, JSONObject
from tasker.domain.retry import backoff_delay_s, should_retry
from tasker.domain.states import StepEvent, StepState, TaskState
from tasker.domain.template import StepTemplate, StepType, TaskTemplate
from tasker.orchestration.expansion import apply_outcome
from tasker.orchestration.lifecycle import evaluate_locked_task, evaluate_locked_tasks
from tasker.orchestration.templates import TemplateCache
from tasker.store.base import Transaction
from tasker.store.sql import FencedResult, LockedTask, PredictedPass, StepOverview

__all__ = [
    "ResultGroup",
    "ResultOutcome",
    "lost_worker_document",
    "submit_result",
    "sweep_expired_leases",
]


class ResultOutcome(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"  # the claim was superseded or the step moved on: nothing written


def submit_result(
    tx: Transaction,
    templates: TemplateCache,
    claim: Claim,
    document: JSONObject,
    now: datetime,
    *,
    jitter: bool = True,
    correlation_id: str | None = None,
    step_template: StepTemplate | None = None,
    group: ResultGroup | None = None,
) -> ResultOutcome:
    """Store a run's result under its claim, process it and advance the task.

    ``step_template``, when the caller knows it (the worker that ran the step), lets the
    success of a plain step be stored and completed in one ``UPDATE`` (``in_progress ->
    enqueued_for_orchestration -> complete``, two transition rows as always). With ``group``
    the task is advanced by ``group.finish`` instead, once for all the group's results.

    Returns:
        ``REFUSED`` when the claim is no longer current (lease expired and swept, task
        cancelled): nothing is written (R1.4).
    """
    task = group.locked.get(claim.task_uuid) if group is not None else None
    if task is None:
        task = tx.lock_task(claim.task_uuid)
        if task is None:
            return ResultOutcome.REFUSED
        if group is not None:
            group.locked[claim.task_uuid] = task
    success = bool(document.get("success"))
    if _is_plain_success(document, step_template):
        return _complete_plain_success(tx, task, claim, document, now, correlation_id, group)
    target = (
        StepState.ENQUEUED_FOR_ORCHESTRATION
        if success
        else StepState.ENQUEUED_AS_ERROR_FOR_ORCHESTRATION
    )
    event = (
        StepEvent.ENQUEUE_FOR_ORCHESTRATION
        if success
        else StepEvent.ENQUEUE_AS_ERROR_FOR_ORCHESTRATION
    )
    moved = tx.transition_step(
        claim.step_uuid,
        claim.task_uuid,
        StepState.IN_PROGRESS,
        target,
        event.value,
        now,
        changes=_result_changes(document),
        claim_token=claim.token,
        metadata={"worker_uuid": claim.worker_id, "correlation_id": correlation_id},
    )
    if moved is None:
        return ResultOutcome.REFUSED
    _audit(tx, claim, moved.transition_uuid, document, correlation_id, now, success=success)
    template = templates.by_uuid(tx, task.named_task_uuid)
    step_template = template.step(moved.template_step_name)
    _process_result(
        tx,
        claim.task_uuid,
        template,
        step_template,
        claim.step_uuid,
        target,
        document,
        moved.attempts,
        moved.retryable,
        moved.max_attempts,
        now,
        jitter,
    )
    _advance(tx, task, now, group)
    return ResultOutcome.APPLIED


class ResultGroup:
    """Results recorded in one transaction (a worker pool's group commit): each task's row is
    locked once, and each task that got a result is evaluated once, after all of them, by
    ``finish``. A pass reads the steps as they are then, so one pass after two results of a
    task decides what two passes would have; it saves a task evaluation (which reads all the
    task's steps) per extra result, most in wide fan-outs. The passes of all the group's tasks
    share their reads and writes (``evaluate_locked_tasks``).

    Results given to ``submit`` (rather than to ``submit_result`` with ``group``) are stored by
    ``finish`` too, as a set: their tasks locked in one statement, the plain successes stored
    and completed in one fenced ``UPDATE`` with one insert of their audit rows; any other
    result takes ``submit_result``'s own path. The group's statements then do not grow with the
    number of results.
    """

    __slots__ = ("advanced", "locked", "overviews", "predict", "queued")

    def __init__(self, *, predict: bool = True) -> None:
        # Predict the passes of a chain's links where the store gains by it (ADR 0023); a
        # transaction that raised PassMispredicted is redone with ``predict=False``.
        self.predict = predict
        self.locked: dict[str, LockedTask] = {}
        self.advanced: dict[str, LockedTask] = {}
        self.queued: list[_Queued] = []
        # Tasks' steps the store read together with storing the results (PostgreSQL).
        self.overviews: dict[str, StepOverview] = {}

    def submit(
        self,
        templates: TemplateCache,
        claim: Claim,
        document: JSONObject,
        now: datetime,
        *,
        jitter: bool = True,
        correlation_id: str | None = None,
        step_template: StepTemplate | None = None,
    ) -> None:
        """``submit_result`` deferred to ``finish``, which returns its outcome."""
        queued = _Queued(claim, document, now, templates, jitter, correlation_id, step_template)
        self.queued.append(queued)

    def finish(self, tx: Transaction, now: datetime) -> list[ResultOutcome]:
        """Store the submitted results and advance every task that got one.

        Returns:
            The outcome of each result given to ``submit``, in that order.
        """
        outcomes = self._store(tx, now) if self.queued else []
        evaluate_locked_tasks(tx, list(self.advanced.values()), now, self.overviews)
        self.advanced.clear()
        self.overviews.clear()
        return outcomes

    def _store(self, tx: Transaction, now: datetime) -> list[ResultOutcome]:
        queued, self.queued = self.queued, []
        if not self.locked and _plain_and_distinct(queued):
            return self._store_plain(tx, queued, now)
        self.locked.update(tx.lock_tasks({q.claim.task_uuid for q in queued} - self.locked.keys()))
        outcomes: list[ResultOutcome] = [ResultOutcome.REFUSED] * len(queued)
        plain: list[int] = []
        steps: set[str] = set()  # a step's second result takes the one-result path (refused)
        for i, q in enumerate(queued):
            if (
                q.claim.task_uuid in self.locked
                and q.claim.step_uuid not in steps
                and _is_plain_success(q.document, q.step_template)
            ):
                plain.append(i)
                steps.add(q.claim.step_uuid)
        for i in _complete_plain_successes(tx, [queued[i] for i in plain], self):
            outcomes[plain[i]] = ResultOutcome.APPLIED
        done = set(plain)
        for i, q in enumerate(queued):
            if i not in done and q.claim.task_uuid in self.locked:
                outcomes[i] = submit_result(
                    tx,
                    q.templates,
                    q.claim,
                    q.document,
                    q.now,
                    jitter=q.jitter,
                    correlation_id=q.correlation_id,
                    step_template=q.step_template,
                    group=self,
                )
        return outcomes

    def _store_plain(
        self, tx: Transaction, queued: Sequence[_Queued], now: datetime
    ) -> list[ResultOutcome]:
        """``_store`` of plain successes of distinct steps, none of whose tasks this group has
        locked yet: the tasks locked, the results stored and audited by one store call (one
        round trip on PostgreSQL, which also reads the tasks' steps for ``finish`` then)."""
        passes = _predicted_passes(queued) if self.predict and tx.predicts_passes else None
        if passes is not None:
            return self._store_predicted(tx, queued, passes, now)
        locked, moved, overviews = tx.lock_and_complete_fenced_steps(
            sorted({q.claim.task_uuid for q in queued}),
            [_fenced(q.claim, q.document, q.correlation_id, q.now) for q in queued],
            [
                _audit_row(q.claim, "", q.document, q.correlation_id, q.now, success=True)
                for q in queued
            ],
            *_PLAIN_SUCCESS_PATH,
            now,
        )
        self.locked.update(locked)
        self.overviews.update(overviews)
        outcomes: list[ResultOutcome] = []
        for q in queued:
            task = locked.get(q.claim.task_uuid)
            if task is None or q.claim.step_uuid not in moved:
                outcomes.append(ResultOutcome.REFUSED)
                continue
            outcomes.append(ResultOutcome.APPLIED)
            _advance(tx, task, q.now, self)
        return outcomes

    def _store_predicted(
        self,
        tx: Transaction,
        queued: Sequence[_Queued],
        passes: Sequence[PredictedPass],
        now: datetime,
    ) -> list[ResultOutcome]:
        """``_store_plain`` with each task's pass predicted (ADR 0023): the store checks the
        premises, so that ``finish`` evaluates the tasks on the predicted overviews without
        reading them, and the whole transaction is one round trip on PostgreSQL. Every result
        is applied, or the transaction fails with ``PassMispredicted``."""
        locked = tx.lock_and_complete_predicted(
            [_fenced(q.claim, q.document, q.correlation_id, q.now) for q in queued],
            [
                _audit_row(q.claim, "", q.document, q.correlation_id, q.now, success=True)
                for q in queued
            ],
            *_PLAIN_SUCCESS_PATH,
            now,
            passes,
        )
        self.locked.update(locked)
        for p in passes:
            # What decides the pass: the ready steps, else (the last step) all complete.
            counts = {StepState.COMPLETE: 1} if p.last else {}
            self.overviews[p.task.task_uuid] = ([(u, StepState.PENDING) for u in p.ready], counts)
        for q in queued:
            _advance(tx, locked[q.claim.task_uuid], q.now, self)
        return [ResultOutcome.APPLIED] * len(queued)


def _predicted_passes(queued: Sequence[_Queued]) -> list[PredictedPass] | None:
    """The passes that plain successes of distinct steps start, if each is predictable: one
    result per task, from a step whose children (read with its claim) each have it as their
    only parent. Those children are then the task's ready steps, unless something else is
    ready or failed too, which the store checks. ``None``: some pass is not predictable."""
    if len({q.claim.task_uuid for q in queued}) != len(queued):
        return None
    passes: list[PredictedPass] = []
    for q in queued:
        successors = q.claim.successors
        if successors is None or not (
            successors.last or (successors.children and all(n == 1 for _, n in successors.children))
        ):
            return None
        task = LockedTask(
            q.claim.task_uuid,
            TaskState.STEPS_IN_PROCESS,
            successors.namespace,
            successors.named_task_uuid,
        )
        ready = tuple(child for child, _ in successors.children)
        passes.append(PredictedPass(task, q.claim.step_uuid, ready, successors.last))
    return passes


def _plain_and_distinct(queued: Sequence[_Queued]) -> bool:
    """Whether every result is a plain success, each of another step."""
    steps = {q.claim.step_uuid for q in queued}
    return len(steps) == len(queued) and all(
        _is_plain_success(q.document, q.step_template) for q in queued
    )


@dataclass(frozen=True, slots=True)
class _Queued:
    """A result given to ``ResultGroup.submit``: ``submit_result``'s arguments."""

    claim: Claim
    document: JSONObject
    now: datetime
    templates: TemplateCache
    jitter: bool
    correlation_id: str | None
    step_template: StepTemplate | None


def _complete_plain_successes(
    tx: Transaction, queued: Sequence[_Queued], group: ResultGroup
) -> list[int]:
    """``_complete_plain_success`` for several results of locked tasks: one fenced ``UPDATE``
    for all the steps and one insert of all the audit rows. Returns the indexes (into
    ``queued``) of the results stored; the others' claims were no longer current."""
    if not queued:
        return []
    moved = tx.complete_fenced_steps(
        [_fenced(q.claim, q.document, q.correlation_id, q.now) for q in queued],
        *_PLAIN_SUCCESS_PATH,
    )
    stored = [i for i, q in enumerate(queued) if q.claim.step_uuid in moved]
    tx.insert_result_audits(
        [
            _audit_row(
                queued[i].claim,
                moved[queued[i].claim.step_uuid],
                queued[i].document,
                queued[i].correlation_id,
                queued[i].now,
                success=True,
            )
            for i in stored
        ]
    )
    for i in stored:
        _advance(tx, group.locked[queued[i].claim.task_uuid], queued[i].now, group)
    return stored


_PLAIN_SUCCESS_PATH = (
    StepState.IN_PROGRESS,
    (StepState.ENQUEUED_FOR_ORCHESTRATION, StepEvent.ENQUEUE_FOR_ORCHESTRATION.value),
    StepState.COMPLETE,
    StepEvent.COMPLETE.value,
)
"""A plain success's move: stored (``via`` its orchestration state) and completed at once."""


def _fenced(
    claim: Claim, document: JSONObject, correlation_id: str | None, now: datetime
) -> FencedResult:
    """A plain success to store under its claim, with its ``via`` transition's metadata."""
    return FencedResult(
        claim.step_uuid,
        claim.token,
        _result_changes(document)["results"],
        now,
        {"worker_uuid": claim.worker_id, "correlation_id": correlation_id},
    )


def _is_plain_success(document: JSONObject, step_template: StepTemplate | None) -> bool:
    """Whether a result is the success of a step that is neither a decision nor batchable
    (stored and completed in one ``UPDATE``)."""
    return (
        bool(document.get("success"))
        and step_template is not None
        and step_template.type not in _OUTCOME_TYPES
    )


def _advance(tx: Transaction, task: LockedTask, now: datetime, group: ResultGroup | None) -> None:
    """Evaluate a task after one of its results was stored, now or when its group finishes."""
    if task.state.is_terminal:
        return
    if group is None:
        evaluate_locked_task(tx, task, now)
    else:
        group.advanced[task.task_uuid] = task


_OUTCOME_TYPES = (StepType.DECISION, StepType.BATCHABLE)
"""Step types whose successful result orchestration must interpret before completing them."""


def _complete_plain_success(
    tx: Transaction,
    task: LockedTask,
    claim: Claim,
    document: JSONObject,
    now: datetime,
    correlation_id: str | None,
    group: ResultGroup | None,
) -> ResultOutcome:
    """``submit_result`` for the success of a step that is neither a decision nor batchable:
    store the result and complete the step in one fenced ``UPDATE``."""
    moved = tx.complete_fenced_steps(
        [_fenced(claim, document, correlation_id, now)], *_PLAIN_SUCCESS_PATH
    )
    via_uuid = moved.get(claim.step_uuid)
    if via_uuid is None:
        return ResultOutcome.REFUSED
    _audit(tx, claim, via_uuid, document, correlation_id, now, success=True)
    _advance(tx, task, now, group)
    return ResultOutcome.APPLIED


def _result_changes(document: JSONObject) -> dict[str, Any]:
    """Row changes of storing a run's result: the claim ends with it."""
    return {"in_process": False, "results": document, "claim_token": None, "lease_expires_at": None}


def _audit(
    tx: Transaction,
    claim: Claim,
    transition_uuid: str,
    document: JSONObject,
    correlation_id: str | None,
    now: datetime,
    *,
    success: bool,
) -> None:
    tx.insert_result_audit(
        **_audit_row(claim, transition_uuid, document, correlation_id, now, success=success)
    )


def _audit_row(
    claim: Claim,
    transition_uuid: str,
    document: JSONObject,
    correlation_id: str | None,
    now: datetime,
    *,
    success: bool,
) -> dict[str, Any]:
    """The result audit row of a stored result (``insert_result_audit``'s arguments)."""
    metadata = document.get("metadata") or {}
    return {
        "step_uuid": claim.step_uuid,
        "transition_uuid": transition_uuid,
        "task_uuid": claim.task_uuid,
        "worker_uuid": claim.worker_id,
        "correlation_id": correlation_id,
        "success": success,
        "execution_time_ms": (
            metadata.get("execution_time_ms") if isinstance(metadata, dict) else None
        ),
        "attempt": claim.attempts_before + 1,
        "now": now,
    }


def _process_result(
    tx: Transaction,
    task_uuid: str,
    template: TaskTemplate,
    step_template: StepTemplate,
    step_uuid: str,
    state: StepState,
    document: JSONObject,
    attempts: int,
    step_retryable: bool,
    max_attempts: int,
    now: datetime,
    jitter: bool,
) -> StepState:
    """Orchestration's classification of a stored result (execution.md §6 steps 3-5)."""
    if state is StepState.ENQUEUED_FOR_ORCHESTRATION:
        problem: str | None = None
        if step_template.type in (StepType.DECISION, StepType.BATCHABLE):
            problem = apply_outcome(
                tx, task_uuid, template, step_template, step_uuid, document.get("result"), now
            )
        if problem is None:
            tx.transition_step(
                step_uuid,
                task_uuid,
                state,
                StepState.COMPLETE,
                StepEvent.COMPLETE.value,
                now,
                changes={"processed": True, "processed_at": now},
            )
            return StepState.COMPLETE
        failed = _outcome_failure(document, problem)
        tx.transition_step(
            step_uuid,
            task_uuid,
            state,
            StepState.ERROR,
            StepEvent.FAIL.value,
            now,
            changes={"results": failed},
            metadata={"error": failed["error"]},
        )
        return StepState.ERROR
    metadata = document.get("metadata") or {}
    error = document.get("error") or {}
    result_retryable = bool(
        metadata.get("retryable", error.get("retryable", False))
        if isinstance(metadata, dict) and isinstance(error, dict)
        else False
    )
    if should_retry(
        result_retryable=result_retryable,
        step_retryable=step_retryable,
        attempts=attempts,
        max_attempts=max_attempts,
    ):
        delay = backoff_delay_s(step_template.retry, attempts, document, now, jitter=jitter)
        tx.transition_step(
            step_uuid,
            task_uuid,
            state,
            StepState.WAITING_FOR_RETRY,
            StepEvent.WAIT_FOR_RETRY.value,
            now,
            changes={
                "backoff_request_seconds": delay,
                "last_attempted_at": now,
                "next_retry_at": now + timedelta(seconds=delay),
            },
            metadata={"error": error, "backoff_seconds": delay},
        )
        return StepState.WAITING_FOR_RETRY
    tx.transition_step(
        step_uuid,
        task_uuid,
        state,
        StepState.ERROR,
        StepEvent.FAIL.value,
        now,
        metadata={"error": error},
    )
    return StepState.ERROR


def _outcome_failure(document: JSONObject, problem: str) -> JSONObject:
    failed = dict(document)
    failed.update(
        {
            "success": False,
            "status": "permanent_error",
            "error": {
                "message": problem,
                "error_type": "invalid_decision_outcome",
                "retryable": False,
            },
        }
    )
    failed["metadata"] = {**(document.get("metadata") or {}), "retryable": False}
    return failed


def lost_worker_document(step_uuid: str, worker_id: str, now: datetime) -> JSONObject:
    """The failure a sweeper records for a run whose lease expired (execution.md §8)."""
    message = f"worker {worker_id} lost its lease on step {step_uuid} (presumed dead)"
    return {
        "step_uuid": step_uuid,
        "success": False,
        "status": "error",
        "result": {},
        "error": {"message": message, "error_type": "worker_lost", "retryable": True},
        "metadata": {
            "retryable": True,
            "error_type": "worker_lost",
            "worker_id": worker_id,
            "completed_at": now.isoformat(),
        },
    }


def sweep_expired_leases(
    tx: Transaction, templates: TemplateCache, now: datetime, *, limit: int = 100
) -> int:
    """Fail every run whose lease expired, as its worker would have; returns how many."""
    swept = 0
    for step_uuid, task_uuid, token, worker_id in tx.expired_leases(now, limit):
        step = tx.get_step(step_uuid)
        attempts = (step.attempts - 1) if step else 0
        claim = Claim(task_uuid, step_uuid, token, worker_id, attempts, now)
        document = lost_worker_document(step_uuid, worker_id, now)
        if submit_result(tx, templates, claim, document, now) is ResultOutcome.APPLIED:
            swept += 1
    return swept
