"""The composition root: one object that owns a store, templates, handlers and worker threads.

with Tasker("sqlite:///orders.db", templates=["templates/"], handlers=["shop.handlers"]) as app:
    task = app.run("order_fulfillment", namespace="shop", context={"order_id": 7})
    print(task.state, task.steps["ship"].result)
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from tasker.config import Settings
from tasker.domain.model import StepRecord, TaskRecord, TaskRequest
from tasker.domain.states import SETTLED_TASK_STATES, TaskState
from tasker.domain.template import TaskTemplate
from tasker.errors import ConfigError, PassMispredicted, TaskNotFound
from tasker.orchestration.creation import CreatedTask, create_task, create_tasks
from tasker.orchestration.dlq import StalenessThresholds, StaleTask, detect_stale_tasks
from tasker.orchestration.lifecycle import evaluate_task
from tasker.orchestration.results import sweep_expired_leases
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store, open_store
from tasker.store.base import Transaction
from tasker.templates import load_templates
from tasker.worker.handlers import HandlerRegistry
from tasker.worker.runner import PoolSettings, WorkerPool

__all__ = ["StepView", "TaskView", "Tasker"]

log = logging.getLogger("tasker.runtime")

# How often Tasker.wait re-reads a task that no transaction of this process settles (its
# workers run in other processes).
_WAIT_POLL_S = 0.2
# Bounds of what Tasker.wait remembers to skip its first read (see ``wait``): tasks created
# here while every settle is heard, and tasks whose settle was heard. Forgetting one costs only
# that read, or at worst one poll interval.
_REMEMBERED_TASKS = 4096


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StepView:
    """A step as a caller sees it: state, attempts, the handler's own result, the last error."""

    step_uuid: str
    name: str
    state: str
    attempts: int
    max_attempts: int
    result: Any
    error: dict[str, Any] | None
    checkpoint: dict[str, Any] | None

    @classmethod
    def from_record(cls, step: StepRecord) -> StepView:
        document = step.results or {}
        success = bool(document.get("success"))
        error = None if success or not document else document.get("error")
        return cls(
            step_uuid=step.workflow_step_uuid,
            name=step.name,
            state=step.state.value,
            attempts=step.attempts,
            max_attempts=step.max_attempts,
            result=document.get("result") if success else None,
            error=error,
            checkpoint=step.checkpoint,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "attempts": self.attempts,
            "result": self.result,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task and its steps, read in one snapshot."""

    task_uuid: str
    namespace: str
    name: str
    version: str
    state: str
    context: dict[str, Any]
    steps: Mapping[str, StepView]
    created_at: datetime
    completed_at: datetime | None

    @property
    def is_complete(self) -> bool:
        return self.state == TaskState.COMPLETE.value

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``tasker run --json``."""
        return {
            "task_uuid": self.task_uuid,
            "state": self.state,
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
        }

    @classmethod
    def build(cls, task: TaskRecord, steps: Iterable[StepRecord]) -> TaskView:
        return cls(
            task_uuid=task.task_uuid,
            namespace=task.namespace,
            name=task.name,
            version=task.version,
            state=task.state.value,
            context=task.context,
            steps={s.name: StepView.from_record(s) for s in steps},
            created_at=task.created_at,
            completed_at=task.completed_at,
        )


class Tasker:
    """An embedded tasker: create tasks and run them on worker threads of this process.

    Args:
        database_url: overrides ``settings.database_url`` (``sqlite:///path`` or ``postgresql://…``).
        settings: every other knob; default: ``Settings.load()`` (reads ``TASKER_*``).
        templates: template files or directories to load and register.
        handlers: modules to import whose handlers are registered.
        registry: the handler registry; default: a fresh one (not the process-wide singleton).
        store: an already opened store (tests, sharing one store between runtimes).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        templates: Iterable[str | Path] = (),
        handlers: Iterable[str | ModuleType] = (),
        registry: HandlerRegistry | None = None,
        store: Store | None = None,
    ) -> None:
        base = settings or Settings.load()
        if database_url is not None:
            base = base.model_copy(update={"database_url": database_url})
        self.settings = base
        # Each worker thread holds a connection while it runs a transaction; the listener, the
        # maintenance loop and the caller's own calls need a few more.
        pool_size = base.db_pool_size or 2 * base.concurrency + 4
        self.store: Store = store or open_store(base.database_url, pool_size=pool_size)
        self.registry = registry or HandlerRegistry()
        self.templates = TemplateCache(base.env)
        # Tasker.wait's per-task events, set after a commit that settled the task.
        self._waiters: dict[str, list[threading.Event]] = {}
        self._waiters_lock = threading.Lock()
        self._subscribed = False
        # Insertion-ordered sets (dicts), under _waiters_lock: see ``wait``.
        self._created_here: dict[str, None] = {}
        self._recently_settled: dict[str, None] = {}
        self._pool: WorkerPool | None = None
        self._maintenance: threading.Thread | None = None
        self._stop = threading.Event()
        self.import_handlers([*base.handlers, *handlers])
        paths = [*base.template_path, *templates]
        if paths:
            self.register_templates(load_templates(paths))

    # -- setup ----------------------------------------------------------------------------

    def import_handlers(self, modules: Iterable[str | ModuleType]) -> int:
        """Import modules and register the handlers they define; returns how many."""
        count = 0
        for module in modules:
            if isinstance(module, str):
                try:
                    module = importlib.import_module(module)
                except ImportError as exc:
                    raise ConfigError(f"cannot import handler module {module!r}: {exc}") from exc
            count += self.registry.register_module(module)
        return count

    def register_templates(self, templates: Iterable[TaskTemplate]) -> list[str]:
        """Register (upsert) templates in the store, all in one transaction."""
        with self.store.transaction() as tx:
            return [self.templates.register(tx, t) for t in templates]

    def register_template(self, template: TaskTemplate) -> str:
        return self.register_templates([template])[0]

    # -- tasks ----------------------------------------------------------------------------

    def create_task(
        self,
        name: str,
        *,
        namespace: str = "default",
        version: str = "1.0.0",
        context: Any = None,
        **fields: Any,
    ) -> str:
        """Create a task and enqueue its first steps; returns its uuid.

        Raises:
            TemplateNotFound, InvalidContext, DuplicateTask: nothing was written.
        """
        request = TaskRequest(
            name=name,
            namespace=namespace,
            version=version,
            context={} if context is None else context,
            **fields,
        )
        return self.submit(request)

    def submit(self, request: TaskRequest) -> str:
        heard = self._hears_every_settle()
        (created,), settled = self._creating(
            lambda tx, predict: [create_task(tx, self.templates, request, _now(), predict=predict)]
        )
        if heard:
            self._remember(self._created_here, [created.task_uuid])
        self._settled_in(settled)
        return created.task_uuid

    def _creating(
        self, create: Callable[[Transaction, bool], list[CreatedTask]]
    ) -> tuple[list[CreatedTask], set[str]]:
        """Run ``create`` in a transaction, predicting the tasks new (ADR 0023: one round trip
        on PostgreSQL); if one was not, again without predicting, which raises
        ``DuplicateTask`` naming the task that holds its identity. Returns the tasks and the
        ones the transaction settled."""
        try:
            with self.store.transaction() as tx:
                created = create(tx, True)
        except PassMispredicted:
            with self.store.transaction() as tx:
                created = create(tx, False)
        return created, tx.settled_tasks

    def submit_many(self, requests: Iterable[TaskRequest]) -> list[str]:
        """Create every task in one transaction; returns their uuids in the requests' order.

        All or nothing: a request that names no template, carries an invalid context or
        repeats an existing identity (or an earlier request's) raises, and no task of the call
        is written. One transaction is much cheaper than one per task (a few hundred tasks
        at once: about a third of the CPU on SQLite), but it holds SQLite's write lock for its
        whole length, so feed very large batches in chunks of a few thousand.

        Raises:
            TemplateNotFound, InvalidContext, DuplicateTask: the message starts with the
                failing request's position, ``request 3: ...``.
        """
        batch = list(requests)
        if not batch:
            return []
        heard = self._hears_every_settle()
        created, settled = self._creating(
            lambda tx, predict: create_tasks(tx, self.templates, batch, _now(), predict=predict)
        )
        uuids = [task.task_uuid for task in created]
        if heard:
            self._remember(self._created_here, uuids)
        self._settled_in(settled)
        return uuids

    def get_task(self, task_uuid: str) -> TaskView:
        """The task and its steps.

        Raises:
            TaskNotFound: no such task.
        """
        with self.store.read() as tx:
            task, steps = tx.task_with_steps(task_uuid)
        if task is None:
            raise TaskNotFound(f"task {task_uuid} does not exist")
        return TaskView.build(task, steps)

    def wait(self, task_uuid: str, timeout_s: float | None = None) -> TaskView:
        """Block until the task is terminal or blocked by failures (or the timeout passes).

        A transaction of this process that settles the task wakes the waiter at once: its
        event is registered before the task is read, so no wake-up falls between the read and
        the wait. On PostgreSQL a task settled by another process wakes it through ``NOTIFY``;
        a lost notification (or SQLite across processes) is caught by a re-read every
        ``_WAIT_POLL_S``.

        A task this process created while it heard every settle (its workers run here on
        SQLite, or the PostgreSQL ``LISTEN`` was up), and whose settle it has not heard yet,
        is not read first: it cannot be settled, and the read would only compete with the
        workers running it. Its settle wakes the waiter, as above.

        Raises:
            TaskNotFound: no such task.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        event = threading.Event()
        with self._waiters_lock:
            if not self._subscribed:
                # Subscribed at the first wait: a process that never waits needs no listener.
                self._subscribed = True
                self.store.on_settled(self._settled_in)
            self._waiters.setdefault(task_uuid, []).append(event)
            unsettled = task_uuid in self._created_here and task_uuid not in self._recently_settled
        try:
            while True:
                if unsettled:
                    unsettled = False  # read after the first wake-up or poll interval
                else:
                    event.clear()
                    view = self._settled_view(task_uuid)
                    if view is not None:
                        return view
                remaining = (
                    _WAIT_POLL_S
                    if deadline is None
                    else min(deadline - time.monotonic(), _WAIT_POLL_S)
                )
                if remaining <= 0:
                    break
                event.wait(remaining)
        finally:
            with self._waiters_lock:
                events = self._waiters[task_uuid]
                events.remove(event)
                if not events:
                    del self._waiters[task_uuid]
                    self._created_here.pop(task_uuid, None)
        return self.get_task(task_uuid)

    def _hears_every_settle(self) -> bool:
        """Every settle of a task created now will reach ``_settled_in``: the store hears
        other processes' settles, or this process runs the workers of an SQLite store (a task
        settled by another process on the same file is then seen at the next poll)."""
        if self.store.hears_settles():
            return True
        return self._pool is not None and self.store.backend == "sqlite"

    def _remember(self, remembered: dict[str, None], task_uuids: Iterable[str]) -> None:
        with self._waiters_lock:
            for task_uuid in task_uuids:
                remembered[task_uuid] = None
            while len(remembered) > _REMEMBERED_TASKS:
                del remembered[next(iter(remembered))]

    def _settled_view(self, task_uuid: str) -> TaskView | None:
        """The task with its steps if it is settled, else ``None``: one read either way (one
        round trip on PostgreSQL, whose steps statement finds none if the task has not
        settled)."""
        with self.store.read() as tx:
            task, steps = tx.task_with_steps(task_uuid, SETTLED_TASK_STATES)
        if task is None:
            raise TaskNotFound(f"task {task_uuid} does not exist")
        if task.state not in SETTLED_TASK_STATES:
            return None
        return TaskView.build(task, steps)

    def _settled_in(self, task_uuids: Iterable[str]) -> None:
        """Wake the waiters of tasks a committed transaction settled."""
        settled = list(task_uuids)
        if not settled:
            return
        self._remember(self._recently_settled, settled)
        for task_uuid in settled:
            with self._waiters_lock:
                events = list(self._waiters.get(task_uuid, ()))
            for event in events:
                event.set()

    def run(
        self,
        name: str,
        *,
        namespace: str = "default",
        version: str = "1.0.0",
        context: Any = None,
        timeout_s: float | None = None,
        **fields: Any,
    ) -> TaskView:
        """Create a task, run it to a terminal (or blocked) state and return it."""
        started_here = self._pool is None
        if started_here:
            self.start()
        try:
            task_uuid = self.create_task(
                name, namespace=namespace, version=version, context=context, **fields
            )
            return self.wait(task_uuid, timeout_s)
        finally:
            if started_here:
                self.stop()

    def cancel_task(self, task_uuid: str) -> TaskView:
        """Cancel a task and every unfinished step (execution.md §11)."""
        from tasker.orchestration.control import cancel_task

        with self.store.transaction() as tx:
            cancel_task(tx, task_uuid, _now())
        self._settled_in(tx.settled_tasks)
        return self.get_task(task_uuid)

    # -- workers and maintenance ----------------------------------------------------------

    def start(self) -> Tasker:
        """Start worker threads and the maintenance loop (idempotent)."""
        if self._pool is not None:
            return self
        s = self.settings
        self._stop.clear()
        self._pool = WorkerPool(
            self.store,
            self.templates,
            self.registry,
            PoolSettings(
                concurrency=s.concurrency,
                namespaces=list(s.namespaces) or None,
                lease_timeout_s=s.lease_timeout_s,
                step_timeout_s=s.step_timeout_s,
                poll_interval_s=s.poll_interval_s,
                jitter=s.jitter_enabled,
                max_result_bytes=s.max_result_bytes,
                batch_max=s.claim_batch_max,
                batch_budget_s=s.claim_batch_budget_ms / 1000.0,
                **({"worker_id": s.worker_id} if s.worker_id else {}),
            ),
            on_settled=lambda task_uuid: self._settled_in((task_uuid,)),
        )
        self._pool.start()
        self._maintenance = threading.Thread(
            target=self._maintain, name="tasker-maintenance", daemon=True
        )
        self._maintenance.start()
        return self

    @property
    def worker_id(self) -> str | None:
        """This process's worker id while workers run."""
        return None if self._pool is None else self._pool.settings.worker_id

    def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming, let running handlers finish, release what is left (R8.5)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._stop.set()
        unfinished = pool.stop(self.settings.shutdown_grace_s if grace_s is None else grace_s)
        if self._maintenance is not None:
            self._maintenance.join(5.0)
            self._maintenance = None
        if unfinished:
            from tasker.orchestration.claims import release_claim

            with self.store.transaction() as tx:
                for claim in unfinished:
                    release_claim(tx, claim, _now())
            self._settled_in(tx.settled_tasks)

    def close(self) -> None:
        self.stop()
        self.store.close()

    def __enter__(self) -> Tasker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def maintain_once(self) -> None:
        """One maintenance pass: timeouts, leases, due retries (the loop calls this)."""
        now = _now()
        pool = self._pool
        if pool is not None:
            pool.check_timeouts()
        with self.store.read() as tx:
            expired = bool(tx.expired_leases(now, 1))
        if expired:  # take the write lock only when there is something to sweep
            with self.store.transaction() as tx:
                sweep_expired_leases(tx, self.templates, now)
            self._settled_in(tx.settled_tasks)
        for task_uuid in self._due_tasks(now):
            with self.store.transaction() as tx:
                evaluate_task(tx, task_uuid, now)
            self._settled_in(tx.settled_tasks)

    def _due_tasks(self, now: datetime) -> Sequence[str]:
        with self.store.read() as tx:
            due = tx.due_retry_tasks(now, 100)
            pending = tx.tasks_in_states([TaskState.PENDING], now, 100)
        return [*due, *pending]

    def check_staleness(self) -> list[StaleTask]:
        """One staleness pass (R5.5): stale tasks get a DLQ entry and move to ``error``."""
        s = self.settings
        thresholds = StalenessThresholds(
            waiting_for_dependencies_minutes=s.stale_waiting_for_dependencies_minutes,
            waiting_for_retry_minutes=s.stale_waiting_for_retry_minutes,
            steps_in_process_minutes=s.stale_steps_in_process_minutes,
            max_lifetime_minutes=s.stale_max_lifetime_minutes,
        )
        with self.store.transaction() as tx:
            stale = detect_stale_tasks(tx, self.templates, _now(), default_thresholds=thresholds)
        self._settled_in(tx.settled_tasks)
        return stale

    def _maintain(self) -> None:
        last_heartbeat = last_staleness = time.monotonic()
        staleness_every = self.settings.staleness_check_interval_s
        while not self._stop.wait(self.settings.maintenance_interval_s):
            try:
                self.maintain_once()
                now = time.monotonic()
                if now - last_heartbeat >= self.settings.heartbeat_interval_s:
                    last_heartbeat = now
                    pool = self._pool
                    if pool is not None:
                        pool.renew_leases()
                if staleness_every and now - last_staleness >= staleness_every:
                    last_staleness = now
                    self.check_staleness()
            except Exception:
                log.exception("maintenance pass failed; retrying at the next interval")
