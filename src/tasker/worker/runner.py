"""Worker threads: claim a step, run its handler, record the result through orchestration.

Each thread loops claim → run → submit with its own store connection and its own event loop
for ``async def`` handlers. Results are group-committed: a thread whose handler finished while
another thread's result transaction is open queues its result, and the next transaction
records every queued result and claims the next step of each of their threads (one commit for
several steps; see docs/decisions/0007-group-commit.md).

A watchdog (``check_timeouts``, called by the runtime's maintenance loop) fails a run that
outlives its timeout and starts a replacement thread, so capacity comes back even when a
handler never returns (R8.3); the stuck thread's late result is refused by the claim's fencing
token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from tasker.domain.model import Claim, JSONObject, StepRecord, TaskRecord
from tasker.domain.template import StepTemplate
from tasker.errors import PassMispredicted, StoreUnavailable, TaskerError
from tasker.orchestration.claims import claim_step_rows, heartbeat, release_claim, save_checkpoint
from tasker.orchestration.results import ResultGroup, ResultOutcome
from tasker.orchestration.templates import TemplateCache
from tasker.store.base import Store, Transaction
from tasker.worker.context import StepContext
from tasker.worker.execution import (
    handler_not_found_result,
    invoke_handler,
    is_checkpoint_yield,
    result_document,
)
from tasker.worker.handlers import HandlerRegistry
from tasker.worker.resolvers import HandlerDefinition
from tasker.worker.results import StepHandlerResult

__all__ = ["WorkerPool", "build_task_sequence_step", "build_task_sequence_steps"]

log = logging.getLogger("tasker.worker")

_T = TypeVar("_T")
_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0
# Parking (docs/decisions/0014-parked-threads.md): a parked or idle thread steps in once a run
# has lasted _STEP_IN_S, and threads park only while runs spend at most _PARK_OFF_CPU_S off the
# CPU on average (handlers that block keep every thread running).
_STEP_IN_S = 0.005
_PARK_OFF_CPU_S = 0.0002
# Where threads do not park (PostgreSQL), idle threads still step in for a stuck run, so two
# steps that wait for each other in one batch never wait for the stuck one's timeout; later,
# as there four busy threads on two cores are often descheduled for milliseconds.
_STEP_IN_UNPARKED_S = 0.05


def _as_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def step_definition(step: StepTemplate) -> JSONObject:
    """A template step as the plain dict handlers see in ``task_sequence_step``.

    Every call returns a fresh, JSON-shaped dict (a handler may change its copy; tuples are
    lists). ``dataclasses.asdict`` costs over 100 µs per step, so the JSON text of each
    template step is built once and parsed per call; a step that is not JSON-serialisable is
    rebuilt every time.
    """
    cached = _STEP_DEFINITIONS.get(id(step))
    if cached is not None and cached[0] is step:
        text = cached[1]
        return _build_step_definition(step) if text is None else json.loads(text)
    data = _build_step_definition(step)
    try:
        encoded: str | None = json.dumps(data)
    except (TypeError, ValueError):
        encoded = None
    if len(_STEP_DEFINITIONS) >= _STEP_DEFINITIONS_MAX:
        _STEP_DEFINITIONS.clear()
    _STEP_DEFINITIONS[id(step)] = (step, encoded)
    return data if encoded is None else json.loads(encoded)


# id(template step) -> (the step, kept alive so its id is not reused; its definition as JSON).
_STEP_DEFINITIONS: dict[int, tuple[StepTemplate, str | None]] = {}
_STEP_DEFINITIONS_MAX = 4096


def _build_step_definition(step: StepTemplate) -> JSONObject:
    data = dataclasses.asdict(step)
    data["type"] = step.type.value
    data["retry"]["backoff"] = step.retry.backoff.value
    data["dependencies"] = list(step.dependencies)
    return data


def build_task_sequence_step(
    tx: Transaction,
    templates: TemplateCache,
    claim: Claim,
    *,
    task: TaskRecord | None = None,
    step: StepRecord | None = None,
    dependency_results: dict[str, JSONObject] | None = None,
) -> tuple[JSONObject, StepTemplate]:
    """Everything a handler may read about its step (python-api.md §2.4).

    ``task``, ``step`` and ``dependency_results`` (the ancestors' results) are passed when the
    caller has them (the step as its claim left it; the task's fields read here never
    change); else they are read.
    """
    if task is None:
        task = tx.get_task(claim.task_uuid)
    if step is None:
        step = tx.get_step(claim.step_uuid)
    if task is None or step is None:
        raise LookupError(f"claimed step {claim.step_uuid} has no task or step row")
    template = templates.by_uuid(tx, task.named_task_uuid)
    step_template = template.step(step.template_step_name)
    tss: JSONObject = {
        "task": {
            "task": {
                "task_uuid": task.task_uuid,
                "named_task_uuid": task.named_task_uuid,
                "context": task.context,
                "correlation_id": task.correlation_id,
                "parent_correlation_id": task.parent_correlation_id,
                "initiator": task.initiator,
                "source_system": task.source_system,
                "reason": task.reason,
                "tags": task.tags,
                "priority": task.priority,
                "identity_hash": task.identity_hash,
                "requested_at": _iso(task.requested_at),
                "created_at": _iso(task.created_at),
            },
            "task_name": task.name,
            "task_version": task.version,
            "namespace_name": task.namespace,
        },
        "workflow_step": {
            "workflow_step_uuid": step.workflow_step_uuid,
            "task_uuid": step.task_uuid,
            "named_step_uuid": None,
            "name": step.name,
            "template_step_name": step.template_step_name,
            "retryable": step.retryable,
            "max_attempts": step.max_attempts,
            "attempts": claim.attempts_before,
            "in_process": step.in_process,
            "processed": step.processed,
            "processed_at": _iso(step.processed_at),
            "last_attempted_at": _iso(step.last_attempted_at),
            "backoff_request_seconds": step.backoff_request_seconds,
            "inputs": step.inputs or {},
            "results": step.results,
            "checkpoint": step.checkpoint,
            "created_at": _iso(step.created_at),
            "updated_at": _iso(step.updated_at),
        },
        "dependency_results": (
            tx.ancestor_results(claim.step_uuid)
            if dependency_results is None
            else dependency_results
        ),
        "step_definition": step_definition(step_template),
    }
    return tss, step_template


def build_task_sequence_steps(
    tx: Transaction,
    templates: TemplateCache,
    claims: Sequence[tuple[Claim, StepRecord]],
    tasks: Mapping[str, TaskRecord],
) -> list[tuple[JSONObject, StepTemplate]]:
    """``build_task_sequence_step`` for several claims (with their rows, as
    ``claim_step_rows`` returns them): the ancestors' results of all of them in one read.

    ``tasks`` holds the claimed steps' task rows (``WorkerPool._tasks_of`` reads the ones its
    cache lacks in one statement); a task missing from it is read on its own.
    """
    ancestors = tx.ancestor_results_of([claim.step_uuid for claim, _ in claims])
    return [
        build_task_sequence_step(
            tx,
            templates,
            claim,
            task=tasks.get(claim.task_uuid),
            step=step,
            dependency_results=ancestors[claim.step_uuid],
        )
        for claim, step in claims
    ]


# Tasks leave the cache when this pool settles them, so it holds the tasks in flight; the bound
# is for those settled elsewhere. Claims go oldest first, one step of every waiting task before
# the next step of any, so a backlog of more tasks than the cache holds would miss every time.
_TASK_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class _Job:
    """A claimed step and what its handler will read."""

    claim: Claim
    tss: JSONObject
    step: StepTemplate


@dataclass(frozen=True, slots=True)
class _Result:
    """A run's result document, waiting to be recorded under its claim."""

    claim: Claim
    document: JSONObject
    correlation_id: str | None
    step: StepTemplate | None


@dataclass(eq=False)
class _Submission:
    """One thread's results waiting for the group commit, and the claims it gets back."""

    results: list[_Result]
    claim_count: int
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # set (before ``done``) when this thread must commit the next group
    jobs: list[_Job] = field(default_factory=list)


@dataclass(eq=False)
class _Batch:
    """The steps one thread holds: claimed and not started, or run and not yet recorded.

    Lease renewal and shutdown see every claim in here; a watchdog that abandons the thread
    takes both lists over."""

    queued: deque[_Job] = field(default_factory=deque)
    done: list[_Result] = field(default_factory=list)
    # The work sequence read before the last transaction whose claim came back short: the
    # queue was empty then, so the thread waits for news after it instead of claiming again.
    drained_at: int | None = None


@dataclass
class _Run:
    """One step run in flight on one thread."""

    claim: Claim
    deadline: float
    thread: threading.Thread
    abandoned: bool = False
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class PoolSettings:
    concurrency: int = 4
    namespaces: Sequence[str] | None = None
    lease_timeout_s: float = 30.0
    step_timeout_s: float = 30.0
    poll_interval_s: float = 0.5
    jitter: bool = True
    max_result_bytes: int = 1_048_576
    batch_max: int = 32
    batch_budget_s: float = 0.002
    worker_id: str = field(default_factory=lambda: f"worker-{time.time_ns():x}")


class WorkerPool:
    """A fixed number of threads that claim and run steps of the namespaces they serve."""

    def __init__(
        self,
        store: Store,
        templates: TemplateCache,
        registry: HandlerRegistry,
        settings: PoolSettings,
        *,
        on_settled: Callable[[str], None] | None = None,
    ) -> None:
        """``on_settled(task_uuid)`` is called after the commit of every transaction of this
        pool that moved a task to a terminal state or to ``blocked_by_failures``."""
        self.store = store
        self.templates = templates
        self.registry = registry
        self.settings = settings
        self._on_settled = on_settled or (lambda _task_uuid: None)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._runs: dict[int, _Run] = {}
        self._batches: dict[int, _Batch] = {}  # thread ident -> the steps that thread holds
        self._runs_lock = threading.Lock()
        # Moving average of a handler run (seconds), which sizes claim batches; None until the
        # first run, so the first claims are single.
        self._run_s: float | None = None
        self._idle = 0  # threads waiting for work: while there are some, claims are single
        # Parking (ADR 0014): moving average of the time a run spends off the CPU (blocked),
        # the threads that hold claimed work, and the parked threads; one of these, the
        # sentinel, watches the runs in flight and steps in when one lasts step_in_s.
        self._off_s: float | None = None
        # Only where the store serialises this process's writes (SQLite's one write lock) does
        # a second thread have nothing to overlap: on PostgreSQL a thread waiting for the
        # server leaves the CPU to the others (parking measured 5-10 % slower there).
        self._one_writer = store.backend == "sqlite"
        self._step_in_s = _STEP_IN_S if self._one_writer else _STEP_IN_UNPARKED_S
        self._park_off_cpu_s = _PARK_OFF_CPU_S
        self._holders: set[int] = set()
        self._parked = 0
        self._park_cv = threading.Condition(self._runs_lock)
        self._sentinel_cv = threading.Condition(self._runs_lock)
        self._sentinel: int | None = None
        self._serial = 0
        # Recently claimed tasks' rows: build_task_sequence_step reads only fields that never
        # change after creation, so the later steps of a task skip reading it again.
        self._tasks: dict[str, TaskRecord] = {}
        self._tasks_lock = threading.Lock()
        # Group commit: results queued while a result transaction is open, and whether one is.
        self._pending: list[_Submission] = []
        self._pending_lock = threading.Lock()
        self._committing = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        for _ in range(self.settings.concurrency):
            self._spawn()

    def _spawn(self, jobs: Sequence[_Job] = ()) -> None:
        self._serial += 1
        thread = threading.Thread(
            target=self._loop, args=(jobs,), name=f"tasker-worker-{self._serial}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def stop(self, grace_s: float = 10.0) -> list[Claim]:
        """Stop claiming, wait up to ``grace_s`` for running handlers; return unfinished claims."""
        self._stopping.set()
        self.store.notify_work()
        with self._park_cv:
            self._park_cv.notify_all()
            self._sentinel_cv.notify_all()
        deadline = time.monotonic() + grace_s
        for thread in list(self._threads):
            thread.join(max(deadline - time.monotonic(), 0.0))
        # Results run by threads still stuck in a later step of their batch are recorded, not
        # released to run again.
        with self._runs_lock:
            done = [result for batch in self._batches.values() for result in batch.done]
            for batch in self._batches.values():
                batch.done = []
        if done:
            self._submit(done, 0)
        return self.in_flight

    @property
    def in_flight(self) -> list[Claim]:
        """Every claim this pool holds: running, claimed and not started, or run and not yet
        recorded."""
        with self._runs_lock:
            claims = [run.claim for run in self._runs.values() if not run.abandoned]
            for batch in self._batches.values():
                claims.extend(job.claim for job in batch.queued)
                claims.extend(result.claim for result in batch.done)
            return claims

    # -- the loop -------------------------------------------------------------------------

    def _loop(self, jobs: Sequence[_Job] = ()) -> None:
        loop = asyncio.new_event_loop()
        batch = _Batch(deque(jobs))
        ident = threading.get_ident()
        with self._runs_lock:
            self._batches[ident] = batch
            if jobs:
                self._holders.add(ident)
        try:
            while not self._stopping.is_set():
                if not batch.queued:
                    if not self._park(batch):  # not parked, or left the park empty-handed
                        self._wait_for_jobs(batch)
                    continue
                if not self._run_batch(batch, loop):
                    return  # abandoned after a timeout: a replacement thread took our slot
        finally:
            with self._runs_lock:
                self._holders.discard(ident)
            loop.close()

    def _wait_for_jobs(self, batch: _Batch) -> None:
        """Claim a step into ``batch``, waiting for one while there is none; returns empty
        once stopping.

        The thread counts as idle (``_park`` counted it) from the moment it has nothing to run
        until its claim commits, so a busy thread never claims a batch that this one could
        share. While it waits it also watches the runs in flight: one that has lasted
        ``step_in_s`` with steps claimed behind it hands those steps over (they may be what the
        run waits for). With ``batch.drained_at`` (the queue was found empty by a transaction
        that started after that work sequence number) it first waits for work announced since,
        instead of claiming at once from a queue just seen empty."""
        ident = threading.get_ident()
        claimed: list[_Job] = []
        seen = batch.drained_at
        batch.drained_at = None
        poll_at = time.monotonic() + self.settings.poll_interval_s
        try:
            while not self._stopping.is_set():
                with self._runs_lock:
                    if self._take_stuck(batch, time.monotonic()):
                        return
                now = time.monotonic()
                if seen is None or now >= poll_at:
                    seen = self.store.work_sequence()
                    try:
                        claimed = self._claim(1)
                    except Exception:
                        log.exception("claiming a step failed; retrying after the poll interval")
                        claimed = []
                    if claimed:
                        return
                    now = time.monotonic()
                    poll_at = now + self.settings.poll_interval_s
                with self._runs_lock:
                    timeout = min(poll_at - now, self._watch_timeout(now))
                announced = self.store.wait_for_work(seen, timeout)
                if announced != seen:
                    seen = None  # work was announced: claim
        finally:
            with self._runs_lock:
                self._idle -= 1
                batch.queued.extend(claimed)
                if batch.queued:
                    self._holders.add(ident)
                    self._sentinel_cv.notify()  # a sentinel of a quiet pool: watch again

    def _batch_limit(self, share: int = 1) -> int:
        """How many steps one thread claims at once (see docs/decisions/0010-claim-batches.md).

        The steps of a batch run one after another on their thread, so a batch is sized to
        take about ``batch_budget_s`` at the average handler time: fast handlers are claimed
        and recorded many per transaction, slow ones one at a time, as before. While a thread
        of this pool waits for work, claims stay single: steps that can run in parallel do,
        and batches form only when every thread is busy. ``share``: the busy thread claims
        for itself and the threads parked beside it (ADR 0014), with their budgets."""
        average = self._run_s
        if average is None or self.settings.batch_max <= 1 or self._idle:
            return 1
        fits = int(share * self.settings.batch_budget_s / max(average, 1e-6))
        return max(1, min(share * self.settings.batch_max, fits))

    def _claim(self, limit: int) -> list[_Job]:
        """Claim up to ``limit`` steps in a transaction of their own."""
        with self.store.transaction() as tx:
            return self._claim_jobs(tx, limit)

    def _claim_jobs(self, tx: Transaction, limit: int) -> list[_Job]:
        """Claim up to ``limit`` steps in ``tx``, each with what its handler will read.

        The claim is ``tx``'s last write: the store may commit with it (one round trip fewer
        on PostgreSQL, ADR 0020). If reading what the handlers need then fails, the committed
        claims are given back, as a rollback would have done."""
        claims = claim_step_rows(
            tx,
            namespaces=self.settings.namespaces,
            limit=limit,
            worker_id=self.settings.worker_id,
            lease_timeout_s=self.settings.lease_timeout_s,
            now=_now(),
            commit=True,
        )
        if not claims:
            return []
        try:
            tasks = self._tasks_of(tx, {claim.task_uuid for claim, _ in claims})
            built = build_task_sequence_steps(tx, self.templates, claims, tasks)
        except Exception:
            if tx.committed:
                self._give_back([claim for claim, _ in claims])
            raise
        return [
            _Job(claim, tss, step_template)
            for (claim, _), (tss, step_template) in zip(claims, built, strict=True)
        ]

    def _give_back(self, claims: list[Claim]) -> None:
        """Release claims that committed but cannot run (best effort: else their leases
        expire)."""
        try:
            with self.store.transaction() as tx:
                for claim in claims:
                    release_claim(tx, claim, _now(), reason="given back: not prepared to run")
        except Exception:
            log.exception("giving back %d claims failed; their leases will expire", len(claims))

    def _tasks_of(self, tx: Transaction, task_uuids: set[str]) -> dict[str, TaskRecord]:
        """The tasks' rows: from the cache of recently claimed tasks, the others read in
        ``tx`` in one statement (and cached)."""
        with self._tasks_lock:
            found = {u: self._tasks[u] for u in task_uuids if u in self._tasks}
        missing = task_uuids - found.keys()
        if missing:
            read = tx.get_tasks(sorted(missing))
            found.update(read)
            with self._tasks_lock:
                for task_uuid, task in read.items():
                    if len(self._tasks) >= _TASK_CACHE_SIZE:
                        del self._tasks[next(iter(self._tasks))]
                    self._tasks[task_uuid] = task
        return found

    def _run_batch(self, batch: _Batch, loop: asyncio.AbstractEventLoop) -> bool:
        """Run the thread's claimed steps one after another and record their results in one
        transaction that also claims the next batch; ``False`` when this thread was abandoned.

        Results already run are recorded early when the batch outlives its budget, so a slow
        handler delays the others' results by at most its own run. On shutdown the steps not
        started stay in ``batch.queued``, where ``stop`` finds them to release."""
        ident = threading.get_ident()
        share = 1 + self._parked  # this batch was claimed for the parked threads too
        budget = share * self.settings.batch_budget_s
        started = time.monotonic()
        while True:
            with self._runs_lock:
                if self._stopping.is_set() or not batch.queued:
                    break
                job = batch.queued.popleft()
                timeout = float(job.step.timeout_seconds or self.settings.step_timeout_s)
                begun = time.monotonic()  # one reading: a timed-out run lasted its timeout
                run = _Run(job.claim, begun + timeout, threading.current_thread(), started=begun)
                self._runs[ident] = run
            cpu = time.thread_time()
            try:
                document = self._execute(job.claim, job.tss, job.step, loop, run, timeout)
            finally:
                with self._runs_lock:
                    if self._runs.get(ident) is run:
                        del self._runs[ident]
            with self._runs_lock:
                if run.abandoned:
                    return False  # the watchdog took this thread's results over
                correlation_id = job.tss["task"]["task"].get("correlation_id")
                batch.done.append(_Result(job.claim, document, correlation_id, job.step))
            elapsed = time.monotonic() - run.started
            off = max(elapsed - (time.thread_time() - cpu), 0.0)
            self._run_s = elapsed if self._run_s is None else 0.8 * self._run_s + 0.2 * elapsed
            self._off_s = off if self._off_s is None else 0.8 * self._off_s + 0.2 * off
            if batch.queued and time.monotonic() - started > budget:
                self._record(batch, claim_count=0)
                started = time.monotonic()
        with self._runs_lock:
            parks = self._parks(ident)
        wanted = 0 if self._stopping.is_set() or parks else self._batch_limit(1 + self._parked)
        self._record(batch, wanted)
        return True

    # -- parking (docs/decisions/0014-parked-threads.md) ----------------------------------

    def _parks(self, ident: int) -> bool:
        """Whether thread ``ident``, about to claim, parks instead (``_runs_lock`` held).

        It does when another thread holds claimed work and runs are quick and on the CPU:
        batches absorb the steps this thread would take, and a second thread would only
        contend for the GIL and the write lock. Never while a run has lasted ``step_in_s``."""
        if not self._parking_pays():
            return False
        if not any(holder != ident for holder in self._holders):
            return False
        return self._stuck_run(time.monotonic()) is None

    def _parking_pays(self) -> bool:
        settings = self.settings
        run_s, off_s = self._run_s, self._off_s
        return (
            self._one_writer
            and settings.concurrency > 1
            and settings.batch_max > 1
            and run_s is not None
            and off_s is not None
            and 2 * run_s <= settings.batch_budget_s
            and off_s <= self._park_off_cpu_s
            and not self._stopping.is_set()
        )

    def _stuck_run(self, now: float) -> int | None:
        """A thread whose run (not abandoned) has lasted ``step_in_s``, if any."""
        for ident, run in self._runs.items():
            if not run.abandoned and now - run.started >= self._step_in_s:
                return ident
        return None

    def _park(self, batch: _Batch) -> bool:
        """Park this thread, which holds nothing, while ``_parks`` says so.

        The first parked thread is the sentinel: it watches the runs in flight and steps in
        when one has lasted ``step_in_s``, taking over the steps that run's thread claimed and
        has not started (they may be what the stuck run waits for); the next parked thread
        becomes the sentinel. Parked threads stay parked while the pool idles, and leave when
        runs stop being quick or on the CPU.

        Returns:
            ``True`` when it stepped in with taken-over steps in ``batch``; ``False`` when it
            did not park or left the park without any (it claims as usual).
        """
        ident = threading.get_ident()
        with self._park_cv:
            self._holders.discard(ident)
            if self._parks(ident):
                self._parked += 1
                try:
                    self._parked_wait(ident, batch)
                finally:
                    self._parked -= 1
                    if self._sentinel == ident:
                        self._sentinel = None
                        self._park_cv.notify()  # the next parked thread takes the watch
                if batch.queued:
                    self._holders.add(ident)
                    return True
            # Counted idle under the same lock that saw it leave: a thread claiming meanwhile
            # sees it idle and claims one step, not a batch this thread should share.
            self._idle += 1
            return False

    def _parked_wait(self, ident: int, batch: _Batch) -> None:
        """The parked thread's wait (``_park_cv`` held); see ``_park``."""
        while not self._stopping.is_set() and self._parking_pays():
            if self._sentinel is None:
                self._sentinel = ident
            if self._sentinel != ident:
                self._park_cv.wait(self.settings.poll_interval_s)
                continue
            now = time.monotonic()
            if self._stuck_run(now) is not None:
                self._take_stuck(batch, now)
                return
            self._sentinel_cv.wait(self._sentinel_timeout(now))

    def _take_stuck(self, batch: _Batch, now: float) -> bool:
        """Move into ``batch`` the claimed, not started steps of a thread whose run has lasted
        ``step_in_s`` (``_runs_lock`` held); whether there were any."""
        for ident, run in self._runs.items():
            if run.abandoned or now - run.started < self._step_in_s:
                continue
            held = self._batches.get(ident)
            if held is not None and held.queued:
                batch.queued.extend(held.queued)
                held.queued.clear()
                return True
        return False

    def _watch_timeout(self, now: float) -> float:
        """How long an idle thread may wait before a thread holding claimed steps behind its
        run has run it for ``step_in_s`` (``_runs_lock`` held; between two runs of its batch,
        ``step_in_s`` from now); infinite when no thread holds steps it has not started."""
        step_in = self._step_in_s
        due = []
        for ident, held in self._batches.items():
            if not held.queued:
                continue
            run = self._runs.get(ident)
            if run is None:
                due.append(now + step_in)
            elif not run.abandoned:
                due.append(run.started + step_in)
        return max(min(due) - now, step_in / 10) if due else float("inf")

    def _sentinel_timeout(self, now: float) -> float:
        """Until the oldest run in flight would have lasted ``step_in_s``; while no thread
        holds work, the poll interval (a thread that takes work wakes the sentinel)."""
        step_in = self._step_in_s
        runs = [run.started for run in self._runs.values() if not run.abandoned]
        if runs:
            return max(min(runs) + step_in - now, step_in / 10)
        if self._holders:
            return step_in
        return self.settings.poll_interval_s

    def _record(self, batch: _Batch, claim_count: int) -> None:
        """Record the batch's results (if any) and queue the steps claimed with them."""
        with self._runs_lock:
            results, batch.done = batch.done, []
        if not results and not claim_count:
            return
        seen = self.store.work_sequence()
        jobs = self._submit(results, claim_count)
        if len(jobs) < claim_count:
            batch.drained_at = seen
        if jobs:
            with self._runs_lock:
                batch.queued.extend(jobs)

    def _execute(
        self,
        claim: Claim,
        tss: JSONObject,
        step: StepTemplate,
        loop: asyncio.AbstractEventLoop,
        run: _Run,
        timeout: float,
    ) -> JSONObject:
        definition = HandlerDefinition(
            callable=step.handler.callable,
            handler_method=step.handler.method,
            resolver=step.handler.resolver,
            initialization=dict(step.handler.initialization),
        )
        started_at = _now()
        clock = time.perf_counter()
        while True:
            result = self._call_once(definition, tss, loop, claim.token)
            if run.abandoned or not is_checkpoint_yield(result):
                break
            oversized = self._oversized_checkpoint(result)
            if oversized is not None:
                result = StepHandlerResult.failure(
                    oversized, error_type="checkpoint_error", retryable=False
                )
                break
            saved = self._checkpoint(claim, result)
            if saved is None:
                result = StepHandlerResult.failure(
                    "checkpoint could not be saved: the claim on this step is no longer current",
                    error_type="checkpoint_error",
                    retryable=True,
                )
                break
            tss["workflow_step"]["checkpoint"] = saved
            run.deadline = time.monotonic() + timeout  # each segment has its own timeout
        return result_document(
            result,
            step_uuid=claim.step_uuid,
            execution_time_ms=(time.perf_counter() - clock) * 1000.0,
            worker_id=self.settings.worker_id,
            started_at=started_at,
            completed_at=_now(),
            max_bytes=self.settings.max_result_bytes,
        )

    def _call_once(
        self,
        definition: HandlerDefinition,
        tss: JSONObject,
        loop: asyncio.AbstractEventLoop,
        event_id: str,
    ) -> StepHandlerResult:
        """Resolve a fresh handler instance and run it once; never raises.

        ``event_id`` is the claim's token: the claim is the dispatch that caused the run (and
        a fresh uuid would cost a system call per step)."""
        try:
            handler = self.registry.resolve(definition)
        except TaskerError as exc:  # unknown resolver, a handler class that cannot be built
            return StepHandlerResult.failure(
                f"cannot load handler {definition.callable}: {exc}",
                error_type="handler_not_found",
                retryable=False,
            )
        if handler is None:
            return handler_not_found_result(definition.callable)
        name = getattr(handler, "name", None) or type(handler).__name__
        context = StepContext.from_task_sequence_step(tss, str(name), event_id=event_id)
        return invoke_handler(handler, context, loop)

    def _oversized_checkpoint(self, result: StepHandlerResult) -> str | None:
        """Why a checkpoint is refused before it is written (R4.2: checkpoints have a size
        limit, the result limit); ``None`` when it fits."""
        size = len(json.dumps(result.result or {}, default=str).encode())
        if size <= self.settings.max_result_bytes:
            return None
        return (
            f"checkpoint is {size} bytes, over the limit of {self.settings.max_result_bytes}"
            " (TASKER_MAX_RESULT_BYTES): keep accumulated_results small"
        )

    def _checkpoint(self, claim: Claim, result: StepHandlerResult) -> JSONObject | None:
        data: dict[str, Any] = dict(result.result or {})
        cursor = data.get("cursor")
        items = _as_count(data.get("items_processed"))
        accumulated = data.get("accumulated_results")

        def save() -> bool:
            with self.store.transaction() as tx:
                return save_checkpoint(
                    tx,
                    claim,
                    cursor=cursor,
                    items_processed=items,
                    accumulated_results=accumulated,
                    lease_timeout_s=self.settings.lease_timeout_s,
                    now=_now(),
                )

        try:
            ok = self._retrying(save, f"saving a checkpoint of step {claim.step_uuid}")
        except Exception:
            log.exception("saving a checkpoint of step %s failed", claim.step_uuid)
            return None
        record = {"cursor": cursor, "items_processed": items, "accumulated_results": accumulated}
        return record if ok else None

    def _submit(self, results: list[_Result], claim_count: int) -> list[_Job]:
        """Record results, and claim up to ``claim_count`` next steps for this thread in the
        same transaction.

        Group commit: if no result transaction is open, this thread opens one for every result
        queued so far (its own included); otherwise it queues its results and waits for the
        thread that commits the next group. Either way it returns once its results are
        committed (or given up, as before, after logging why).
        """
        item = _Submission(results, claim_count)
        with self._pending_lock:
            self._pending.append(item)
            lead = not self._committing
            self._committing = True
        if not lead:
            item.done.wait()
            if not item.lead:
                return item.jobs
        with self._pending_lock:
            group, self._pending = self._pending, []
        self._commit_group(group)
        with self._pending_lock:
            if self._pending:  # queued meanwhile: their first thread commits the next group
                successor = self._pending[0]
                successor.lead = True
                successor.done.set()
            else:
                self._committing = False
        for other in group:
            if other is not item:
                other.done.set()
        return item.jobs

    def _commit_group(self, group: list[_Submission]) -> None:
        """Record every result of ``group`` in one transaction and claim the next steps its
        threads asked for; a group that fails is retried one result at a time."""
        settled: set[str] = set()
        wanted = 0 if self._stopping.is_set() else sum(item.claim_count for item in group)
        # Lock tasks in one order everywhere, so two processes' groups cannot deadlock.
        ordered = sorted(
            (result for item in group for result in item.results),
            key=lambda result: result.claim.task_uuid,
        )

        def record(predict: bool = True) -> tuple[list[ResultOutcome], list[_Job]]:
            nonlocal settled
            with self.store.transaction() as tx:
                settled = tx.settled_tasks
                results = ResultGroup(predict=predict)
                for result in ordered:
                    results.submit(
                        self.templates,
                        result.claim,
                        result.document,
                        _now(),
                        jitter=self.settings.jitter,
                        correlation_id=result.correlation_id,
                        step_template=result.step,
                    )
                outcomes = results.finish(tx, _now())
                jobs = self._claim_jobs(tx, wanted) if wanted else []
            return outcomes, jobs

        def record_as_predicted_or_not() -> tuple[list[ResultOutcome], list[_Job]]:
            try:
                return record()
            except PassMispredicted as exc:  # rolled back: redo it the ordinary way
                log.debug("%s; recording again without predicting", exc)
                return record(predict=False)

        what = (
            f"recording the result of step {ordered[0].claim.step_uuid}"
            if len(ordered) == 1
            else f"recording the results of {len(ordered)} steps"
        )
        try:
            outcomes, jobs = self._retrying(record_as_predicted_or_not, what)
        except Exception:
            if len(ordered) > 1:  # one bad result must not lose the others
                for result in ordered:
                    self._commit_group([_Submission([result], 0)])
                return
            log.exception("%s failed", what)
            return
        for result, outcome in zip(ordered, outcomes, strict=True):
            if outcome is ResultOutcome.REFUSED:
                log.warning(
                    "result of step %s refused: its claim is no longer current",
                    result.claim.step_uuid,
                )
        _deal(jobs, group)
        self._settled(settled)

    def _settled(self, task_uuids: set[str]) -> None:
        """Tasks this pool settled leave the task cache; their waiters are told."""
        if task_uuids:
            with self._tasks_lock:
                for task_uuid in task_uuids:
                    self._tasks.pop(task_uuid, None)
        for task_uuid in task_uuids:
            self._on_settled(task_uuid)

    def _retrying(self, action: Callable[[], _T], what: str) -> _T:
        """Run a write transaction, redoing it while the store is unavailable (R3.1).

        The transaction rolled back, so redoing it is safe; the claim token still fences it, so
        a result that arrives after the lease was swept is refused, not applied twice. The
        retries stop after about twice the lease timeout: by then the claim is lost anyway.
        """
        delay = _RETRY_FIRST_S
        give_up = time.monotonic() + 2 * self.settings.lease_timeout_s
        while True:
            try:
                return action()
            except StoreUnavailable as exc:
                if time.monotonic() + delay > give_up:
                    raise
                log.warning("%s: %s; retrying in %.2f s", what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    # -- maintenance hooks (called by the runtime's maintenance loop) ---------------------

    def renew_leases(self) -> None:
        """Heartbeat every claim still running on this pool (R1.2)."""
        claims = self.in_flight
        if not claims:
            return
        with self.store.transaction() as tx:
            for claim in claims:
                heartbeat(tx, claim, self.settings.lease_timeout_s, _now())

    def check_timeouts(self) -> None:
        """Fail runs past their deadline and replace their threads (R8.3).

        The stuck thread's batch is taken over: the results it had run are recorded with the
        timeout, and the steps it had claimed but not started go to its replacement."""
        now_mono = time.monotonic()
        taken: list[tuple[_Run, list[_Result], list[_Job]]] = []
        with self._runs_lock:
            for ident, run in self._runs.items():
                if run.abandoned or run.deadline >= now_mono:
                    continue
                run.abandoned = True
                self._holders.discard(ident)
                batch = self._batches.get(ident) or _Batch()
                done, batch.done = batch.done, []
                queued: list[_Job] = []
                if not self._stopping.is_set():  # else stop() finds and releases them
                    queued = list(batch.queued)
                    self._batches.pop(ident, None)
                taken.append((run, done, queued))
        for run, done, queued in taken:
            document = result_document(
                StepHandlerResult.failure(
                    "step handler timed out", error_type="timeout", retryable=True
                ),
                step_uuid=run.claim.step_uuid,
                # The run lasted at least until its deadline; analytics must not see it as fast.
                execution_time_ms=(now_mono - run.started) * 1000.0,
                worker_id=self.settings.worker_id,
                started_at=run.started_at,
                completed_at=_now(),
            )
            self._submit([*done, _Result(run.claim, document, None, None)], 0)
            if not self._stopping.is_set():
                self._spawn(queued)


def _deal(jobs: list[_Job], group: list[_Submission]) -> None:
    """Hand claimed jobs out one at a time, in turn, to the submissions that asked for them,
    so that several threads share a short supply instead of the first taking it all."""
    wants = {id(item): item.claim_count for item in group}
    position = 0
    while position < len(jobs):
        dealt = False
        for item in group:
            if position < len(jobs) and wants[id(item)] > 0:
                item.jobs.append(jobs[position])
                wants[id(item)] -= 1
                position += 1
                dealt = True
        if not dealt:
            break
