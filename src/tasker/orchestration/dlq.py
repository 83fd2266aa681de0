"""The dead letter queue and the staleness detector (execution.md §8 and §9).

The DLQ only records: why a task got stuck (a snapshot) and what an operator decided. It never
moves, retries or edits steps; operator step actions (``tasker.orchestration.operator``) do
that. At most one entry per task is ``pending`` (a unique partial index, A13); resolved entries
stay as history.

The staleness detector moves a task that sat too long in a waiting or in-process state to
``error`` and opens its ``staleness_timeout`` entry, once, even when detectors race: the task
row lock serialises them and the pending-entry index refuses a second entry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from tasker.domain.model import JSONObject, TaskRecord
from tasker.domain.states import TaskEvent, TaskState
from tasker.domain.template import Lifecycle
from tasker.errors import ConfigError, IllegalTransition, NotFound
from tasker.orchestration.lifecycle import move_task
from tasker.orchestration.queries import JsonShape, clamp_page
from tasker.orchestration.templates import TemplateCache
from tasker.store.base import Transaction

__all__ = [
    "DEFAULT_STALENESS_THRESHOLDS",
    "DLQ_REASONS",
    "RESOLUTION_STATUSES",
    "STALE_TASK_STATES",
    "TRIAGE_BASE_PRIORITY",
    "DlqEntry",
    "DlqInvestigationQueueEntry",
    "DlqStats",
    "StaleTask",
    "StalenessMonitoring",
    "StalenessThresholds",
    "detect_stale_tasks",
    "dlq_entry_for_task",
    "dlq_stats",
    "health_label",
    "investigation_queue",
    "list_dlq_entries",
    "staleness_report",
    "task_snapshot",
    "update_dlq_entry",
]

DLQ_REASONS = (
    "staleness_timeout",
    "max_retries_exceeded",
    "dependency_cycle_detected",
    "worker_unavailable",
    "manual_dlq",
)
RESOLUTION_STATUSES = ("pending", "manually_resolved", "permanently_failed", "cancelled")
TRIAGE_BASE_PRIORITY = MappingProxyType(
    {
        "dependency_cycle_detected": 1000.0,
        "max_retries_exceeded": 500.0,
        "staleness_timeout": 100.0,
        "worker_unavailable": 50.0,
        "other": 10.0,
    }
)
"""Base of an entry's triage priority by reason; minutes since the entry are added."""

STALE_TASK_STATES = frozenset(
    {TaskState.WAITING_FOR_DEPENDENCIES, TaskState.WAITING_FOR_RETRY, TaskState.STEPS_IN_PROCESS}
)
"""The states the staleness detector moves to ``error`` (states.md §1.2, privileged writes)."""


# -- shapes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StalenessThresholds:
    """Engine defaults in minutes; a template's ``lifecycle`` overrides the per-state ones.

    ``other_state_minutes`` applies to unfinished states without a threshold of their own (it
    only labels them in reports; the detector never moves them). ``max_lifetime_minutes`` is
    the global task lifetime (templates.md §5: ``max_duration_minutes`` stays descriptive).

    Raises:
        ConfigError: a threshold is not positive.
    """

    waiting_for_dependencies_minutes: float = 60.0
    waiting_for_retry_minutes: float = 30.0
    steps_in_process_minutes: float = 30.0
    other_state_minutes: float = 1440.0
    max_lifetime_minutes: float = 1440.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ConfigError(
                    f"staleness threshold {field.name} must be > 0 minutes, got {value}"
                )

    def for_state(self, state: TaskState, lifecycle: Lifecycle | None) -> float:
        """The threshold for a task in ``state`` of a template with ``lifecycle``."""
        own: int | None = None
        if lifecycle is not None:
            own = {
                TaskState.WAITING_FOR_DEPENDENCIES: lifecycle.max_waiting_for_dependencies_minutes,
                TaskState.WAITING_FOR_RETRY: lifecycle.max_waiting_for_retry_minutes,
                TaskState.STEPS_IN_PROCESS: lifecycle.max_steps_in_process_minutes,
            }.get(state)
        if own is not None:
            return float(own)
        return {
            TaskState.WAITING_FOR_DEPENDENCIES: self.waiting_for_dependencies_minutes,
            TaskState.WAITING_FOR_RETRY: self.waiting_for_retry_minutes,
            TaskState.STEPS_IN_PROCESS: self.steps_in_process_minutes,
        }.get(state, self.other_state_minutes)


DEFAULT_STALENESS_THRESHOLDS = StalenessThresholds()


@dataclass(frozen=True, slots=True)
class DlqEntry(JsonShape):
    """An investigation record (rest-api.md §4 ``DlqEntry``)."""

    dlq_entry_uuid: str
    task_uuid: str
    original_state: str
    dlq_reason: str
    dlq_timestamp: datetime
    resolution_status: str
    resolution_timestamp: datetime | None
    resolution_notes: str | None
    resolved_by: str | None
    task_snapshot: JSONObject
    metadata: JSONObject | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DlqStats(JsonShape):
    """Entries of one reason, counted by resolution status (rest-api.md §4 ``DlqStats``)."""

    dlq_reason: str
    total_entries: int
    pending: int
    manually_resolved: int
    permanent_failures: int
    cancelled: int
    oldest_entry: datetime | None
    newest_entry: datetime | None
    avg_resolution_time_minutes: float | None


@dataclass(frozen=True, slots=True)
class DlqInvestigationQueueEntry(JsonShape):
    """A pending entry with its triage priority (rest-api.md §4)."""

    dlq_entry_uuid: str
    task_uuid: str
    original_state: str
    dlq_reason: str
    dlq_timestamp: datetime
    minutes_in_dlq: float
    namespace_name: str | None
    task_name: str | None
    current_state: str | None
    time_in_state_minutes: float | None
    priority_score: float


@dataclass(frozen=True, slots=True)
class StalenessMonitoring(JsonShape):
    """An unfinished task measured against its staleness threshold (rest-api.md §4)."""

    task_uuid: str
    namespace_name: str | None
    task_name: str | None
    current_state: str
    time_in_state_minutes: float
    task_age_minutes: float
    staleness_threshold_minutes: float
    health_status: str
    priority: int


@dataclass(frozen=True, slots=True)
class StaleTask(JsonShape):
    """A task the detector found stale; ``moved`` is false on a dry run.

    ``trigger`` is ``time_in_state`` or ``max_lifetime``.
    """

    task_uuid: str
    namespace: str
    task_name: str
    current_state: str
    time_in_state_minutes: float
    threshold_minutes: float
    task_age_minutes: float
    trigger: str
    moved: bool


# -- reading and resolving entries -------------------------------------------------------------


def _entry(row: dict[str, Any]) -> DlqEntry:
    return DlqEntry(
        dlq_entry_uuid=str(row["dlq_entry_uuid"]),
        task_uuid=str(row["task_uuid"]),
        original_state=row["original_state"],
        dlq_reason=row["dlq_reason"],
        dlq_timestamp=row["dlq_timestamp"],
        resolution_status=row["resolution_status"],
        resolution_timestamp=row["resolution_timestamp"],
        resolution_notes=row["resolution_notes"],
        resolved_by=row["resolved_by"],
        task_snapshot=row["task_snapshot"] or {},
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def list_dlq_entries(
    tx: Transaction, *, resolution_status: str | None = None, limit: int = 50, offset: int = 0
) -> list[DlqEntry]:
    """DLQ entries, newest first (GET /v1/dlq).

    Args:
        resolution_status: only entries in this status; ``None`` for all.
        limit: page size, clamped to 1..100.
        offset: entries to skip.
    """
    limit, offset = clamp_page(limit, offset)
    rows = tx.dlq_entries_page(resolution_status=resolution_status, limit=limit, offset=offset)
    return [_entry(r) for r in rows]


def dlq_entry_for_task(tx: Transaction, task_uuid: str) -> DlqEntry | None:
    """The task's latest DLQ entry (pending or not), or ``None`` if it never had one."""
    row = tx.latest_dlq_entry(task_uuid)
    return None if row is None else _entry(row)


def update_dlq_entry(
    tx: Transaction,
    dlq_entry_uuid: str,
    *,
    resolution_status: str | None = None,
    resolution_notes: str | None = None,
    resolved_by: str | None = None,
    metadata: JSONObject | None = None,
    now: datetime,
) -> DlqEntry:
    """Record an operator's investigation result (PATCH /v1/dlq/entry/{uuid}, §9.2).

    Fields left ``None`` keep their value; ``metadata`` is merged into the entry's (the
    operator's keys win). Leaving ``pending`` sets ``resolution_timestamp``; going back to
    ``pending`` clears it.

    Raises:
        NotFound: no such entry.
        IllegalTransition: an unknown status, or reopening an entry while the task has another
            pending one; nothing was written.
    """
    entry = tx.lock_dlq_entry(dlq_entry_uuid)
    if entry is None:
        raise NotFound(f"DLQ entry {dlq_entry_uuid} does not exist")
    old_status: str = entry["resolution_status"]
    status = old_status if resolution_status is None else resolution_status
    if status not in RESOLUTION_STATUSES:
        raise IllegalTransition(
            f"cannot update DLQ entry {dlq_entry_uuid}: unknown resolution_status {status!r}"
            f" (valid: {', '.join(RESOLUTION_STATUSES)})"
        )
    resolved_at = entry["resolution_timestamp"]
    if status == "pending":
        resolved_at = None
        if old_status != "pending" and tx.has_other_pending_dlq_entry(
            str(entry["task_uuid"]), dlq_entry_uuid
        ):
            raise IllegalTransition(
                f"cannot reopen DLQ entry {dlq_entry_uuid}: task {entry['task_uuid']} already"
                " has a pending entry (only one may be pending)"
            )
    elif old_status == "pending":
        resolved_at = now
    merged = dict(entry["metadata"] or {})
    merged.update(metadata or {})
    notes = entry["resolution_notes"] if resolution_notes is None else resolution_notes
    tx.update_dlq_entry(
        dlq_entry_uuid,
        resolution_status=status,
        resolution_timestamp=resolved_at,
        resolution_notes=notes,
        resolved_by=entry["resolved_by"] if resolved_by is None else resolved_by,
        metadata=merged,
        now=now,
    )
    updated = tx.lock_dlq_entry(dlq_entry_uuid)
    assert updated is not None  # locked by this transaction
    return _entry(updated)


def dlq_stats(tx: Transaction) -> list[DlqStats]:
    """One row per DLQ reason that has entries (GET /v1/dlq/stats)."""
    return [
        DlqStats(
            dlq_reason=r["dlq_reason"],
            total_entries=int(r["total_entries"]),
            pending=int(r["pending"]),
            manually_resolved=int(r["manually_resolved"]),
            permanent_failures=int(r["permanent_failures"]),
            cancelled=int(r["cancelled"]),
            oldest_entry=r["oldest_entry"],
            newest_entry=r["newest_entry"],
            avg_resolution_time_minutes=_float_or_none(r["avg_resolution_time_minutes"]),
        )
        for r in tx.dlq_stats()
    ]


def investigation_queue(
    tx: Transaction, now: datetime, limit: int = 50
) -> list[DlqInvestigationQueueEntry]:
    """Pending entries, highest triage priority first (execution.md §9.1).

    Priority = base by reason (``TRIAGE_BASE_PRIORITY``) + minutes since the entry was opened.
    """
    limit, _ = clamp_page(limit)
    rows = tx.dlq_investigation_queue(now, base_priorities=TRIAGE_BASE_PRIORITY, limit=limit)
    return [
        DlqInvestigationQueueEntry(
            dlq_entry_uuid=str(r["dlq_entry_uuid"]),
            task_uuid=str(r["task_uuid"]),
            original_state=r["original_state"],
            dlq_reason=r["dlq_reason"],
            dlq_timestamp=r["dlq_timestamp"],
            minutes_in_dlq=float(r["minutes_in_dlq"]),
            namespace_name=r["namespace_name"],
            task_name=r["task_name"],
            current_state=r["current_state"],
            time_in_state_minutes=_float_or_none(r["time_in_state_minutes"]),
            priority_score=float(r["priority_score"]),
        )
        for r in rows
    ]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


# -- staleness ---------------------------------------------------------------------------------


def health_label(time_in_state_minutes: float, threshold_minutes: float) -> str:
    """``healthy`` below 80 % of the threshold, ``warning`` up to it, ``stale`` at or past it."""
    if time_in_state_minutes >= threshold_minutes:
        return "stale"
    if time_in_state_minutes >= 0.8 * threshold_minutes:
        return "warning"
    return "healthy"


def staleness_report(
    tx: Transaction,
    now: datetime,
    limit: int = 50,
    *,
    thresholds: StalenessThresholds = DEFAULT_STALENESS_THRESHOLDS,
) -> list[StalenessMonitoring]:
    """Unfinished tasks against their thresholds, the most overdue first (GET /v1/dlq/staleness)."""
    limit, _ = clamp_page(limit)
    rows = tx.staleness_monitoring(
        now,
        waiting_for_dependencies_minutes=thresholds.waiting_for_dependencies_minutes,
        waiting_for_retry_minutes=thresholds.waiting_for_retry_minutes,
        steps_in_process_minutes=thresholds.steps_in_process_minutes,
        other_state_minutes=thresholds.other_state_minutes,
        limit=limit,
    )
    report = []
    for r in rows:
        in_state = float(r["time_in_state_minutes"])
        threshold = float(r["threshold_minutes"])
        report.append(
            StalenessMonitoring(
                task_uuid=str(r["task_uuid"]),
                namespace_name=r["namespace"],
                task_name=r["name"],
                current_state=r["state"],
                time_in_state_minutes=in_state,
                task_age_minutes=float(r["task_age_minutes"]),
                staleness_threshold_minutes=threshold,
                health_status=health_label(in_state, threshold),
                priority=int(r["priority"]),
            )
        )
    return report


def task_snapshot(
    task: TaskRecord, current_state: TaskState, now: datetime, **extra: Any
) -> JSONObject:
    """The ``task_snapshot`` of a DLQ entry (execution.md §9.1), plus ``extra`` keys."""
    snapshot: JSONObject = {
        "task_uuid": task.task_uuid,
        "namespace": task.namespace,
        "task_name": task.name,
        "current_state": current_state.value,
        "snapshot_timestamp": now.isoformat(),
        "task_details": {
            "correlation_id": task.correlation_id,
            "priority": task.priority,
            "requested_at": task.requested_at.isoformat(),
            "created_at": task.created_at.isoformat(),
        },
    }
    snapshot.update(extra)
    return snapshot


def detect_stale_tasks(
    tx: Transaction,
    templates: TemplateCache,
    now: datetime,
    *,
    dry_run: bool = False,
    limit: int = 100,
    default_thresholds: StalenessThresholds = DEFAULT_STALENESS_THRESHOLDS,
) -> list[StaleTask]:
    """One staleness pass: each stale task gets a DLQ entry and moves to ``error`` (§8).

    Candidates are unfinished tasks in ``waiting_for_dependencies``, ``waiting_for_retry`` or
    ``steps_in_process`` without a pending DLQ entry, whose minutes in state reach the
    threshold (template ``lifecycle``, else ``default_thresholds``) or whose age reaches
    ``max_lifetime_minutes``. Each is re-checked under its row lock, so a task that moved on,
    or that a concurrent detector already handled, is skipped.

    Args:
        dry_run: only report; nothing is locked or written.
        limit: most tasks handled in this pass.

    Returns:
        The stale tasks found (``moved`` true for those moved to ``error`` in this pass).
    """
    limit, _ = clamp_page(limit)
    t = default_thresholds
    candidates = tx.stale_task_candidates(
        now,
        waiting_for_dependencies_minutes=t.waiting_for_dependencies_minutes,
        waiting_for_retry_minutes=t.waiting_for_retry_minutes,
        steps_in_process_minutes=t.steps_in_process_minutes,
        max_lifetime_minutes=t.max_lifetime_minutes,
        limit=limit,
    )
    found = []
    # Lock in one global order so that concurrent detectors cannot deadlock on each other.
    for task_uuid in sorted(candidates):
        stale = _handle_candidate(tx, templates, task_uuid, now, dry_run, t)
        if stale is not None:
            found.append(stale)
    return found


def _handle_candidate(
    tx: Transaction,
    templates: TemplateCache,
    task_uuid: str,
    now: datetime,
    dry_run: bool,
    thresholds: StalenessThresholds,
) -> StaleTask | None:
    locked = None if dry_run else tx.lock_task(task_uuid)
    timing = tx.task_state_timing(task_uuid)
    record = tx.get_task(task_uuid)
    if timing is None or record is None or (not dry_run and locked is None):
        return None
    state, entered_at, created_at = timing
    if state not in STALE_TASK_STATES:
        return None  # moved on since the candidate query (or another detector moved it)
    lifecycle = templates.by_uuid(tx, record.named_task_uuid).lifecycle
    threshold = thresholds.for_state(state, lifecycle)
    in_state = (now - entered_at).total_seconds() / 60.0
    age = (now - created_at).total_seconds() / 60.0
    if in_state >= threshold:
        trigger = "time_in_state"
    elif age >= thresholds.max_lifetime_minutes:
        trigger, threshold = "max_lifetime", thresholds.max_lifetime_minutes
    else:
        return None
    stale = StaleTask(
        task_uuid=task_uuid,
        namespace=record.namespace,
        task_name=record.name,
        current_state=state.value,
        time_in_state_minutes=in_state,
        threshold_minutes=threshold,
        task_age_minutes=age,
        trigger=trigger,
        moved=False,
    )
    if locked is None:
        return stale
    snapshot = task_snapshot(
        record, state, now, time_in_state_minutes=in_state, threshold_minutes=threshold
    )
    metadata: JSONObject = {
        "detection_method": "automatic_staleness",
        "time_in_state_minutes": in_state,
        "threshold_minutes": threshold,
        "trigger": trigger,
    }
    if not tx.insert_dlq_entry(
        task_uuid, state.value, "staleness_timeout", snapshot, metadata, now
    ):
        return None  # a pending entry appeared meanwhile: somebody else is on it
    move_task(
        tx,
        locked,
        state,
        TaskEvent.STALENESS_TIMEOUT,
        now,
        {
            "reason": "staleness_timeout",
            "namespace": record.namespace,
            "task_name": record.name,
            "detected_at": now.isoformat(),
        },
    )
    return replace(stale, moved=True)
