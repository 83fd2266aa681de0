"""The persistence operations both SQL backends share, over a backend's named queries.

A backend supplies a ``Dialect`` (how JSON, timestamps and booleans travel, how placeholders are
written) and its own ``queries.sql``; everything else is written once here. A state change is one
compare-and-set ``UPDATE`` of the task or step row that also sets its ``last_*`` columns; the
backend's triggers (``schema.sql``) turn it into the transition rows (states.md §3.1).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tasker.domain.model import JSONObject, StepRecord, Successors, TaskRecord, TransitionRecord
from tasker.domain.states import (
    SATISFIED_STEP_STATES,
    SETTLED_TASK_STATES,
    StepEvent,
    StepState,
    TaskState,
)
from tasker.errors import PassMispredicted

__all__ = [
    "Dialect",
    "FencedResult",
    "LockedTask",
    "NewStep",
    "PredictedPass",
    "SqlTransaction",
    "StepTransition",
    "StoreStats",
    "enqueued_step_path",
    "new_uuid",
]


_UUID_LOCK = threading.Lock()
_last_uuid = [0, 0]  # (ms, random bits) of this process's latest id


def _reset_uuid_lock() -> None:
    global _UUID_LOCK  # a fork may have copied it held by another thread
    _UUID_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_uuid_lock)


def new_uuid() -> str:
    """A time-ordered UUID (v7 layout) as text, so ids sort by creation.

    Within one process the order is strict, as RFC 9562 §6.2 (method 3) allows: an id made in
    the same millisecond as the previous one (or while the clock stepped back) takes the
    previous random bits plus a random increment, so two tasks created one after the other sort
    in that order (the claim order of ADR 0016 relies on it). Across processes the order is the
    millisecond's.
    """
    ms = time.time_ns() // 1_000_000
    with _UUID_LOCK:
        last_ms, last_rand = _last_uuid
        if ms > last_ms:
            rand = random.getrandbits(74)
        else:
            ms, rand = last_ms, last_rand + 1 + random.getrandbits(32)
            if rand >> 74:  # the random bits ran out within one millisecond: borrow the next
                ms, rand = ms + 1, random.getrandbits(73)
        _last_uuid[0], _last_uuid[1] = ms, rand
    return _uuid7_text(ms, rand)


def _uuid7_text(ms: int, rand: int) -> str:
    """UUIDv7 text from a millisecond timestamp and 74 random bits.

    The random bits come from ``random`` (seeded from the OS, re-seeded after ``fork``): ids
    must be unique, not unguessable, and ``os.urandom`` costs a system call per id.
    """
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class LockedTask:
    """A task row held under lock by the current transaction."""

    task_uuid: str
    state: TaskState
    namespace: str
    named_task_uuid: str


@dataclass(frozen=True, slots=True)
class StepTransition:
    """A step state change that was written: its transition row and what orchestration reads
    next about the step, so the caller need not read the row again."""

    transition_uuid: str
    template_step_name: str
    attempts: int
    retryable: bool
    max_attempts: int
    record: StepRecord | None = None  # the whole row, when asked for with ``full_row``
    via_transition_uuid: str | None = None  # the row of the ``via`` state, when one was given


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task row written by ``SqlTransaction.insert_tasks``: its column values and the moves
    of its first orchestration pass (see ``insert_task``)."""

    values: Mapping[str, Any]
    moves: Sequence[tuple[TaskState, str, JSONObject | None]]


@dataclass(frozen=True, slots=True)
class NewStep:
    """A step row written when its task is created (``SqlTransaction.insert_steps``)."""

    workflow_step_uuid: str
    name: str
    template_step_name: str
    retryable: bool
    max_attempts: int
    inputs: str | None  # JSON text of the step's inputs, encoded once per template step
    enqueue: bool  # ready at creation: inserted enqueued


@dataclass(frozen=True, slots=True)
class FencedResult:
    """A run's result to store under its claim (``complete_fenced_steps``)."""

    step_uuid: str
    claim_token: str
    results: JSONObject
    now: datetime
    via_metadata: JSONObject | None = None  # the caller's keys of the ``via`` transition


StepOverview = tuple[list[tuple[str, StepState]], dict[StepState, int]]
"""A task's ready steps and its step counts by state (``step_overview``)."""


@dataclass(frozen=True, slots=True)
class PredictedPass:
    """What orchestration predicts of a task once ``step_uuid``'s result is stored: the task
    still ``steps_in_process`` (as ``task`` says), no step of it in ``error``, and ``ready``
    exactly the task's ready steps, all ``pending``, in ``step_overview``'s order (ADR 0023).
    ``last`` (``ready`` empty): every step of the task complete, so the pass completes it."""

    task: LockedTask
    step_uuid: str
    ready: tuple[str, ...]
    last: bool = False


@dataclass(slots=True)
class StoreStats:
    """Statements and commits issued, to measure what one step costs; ``read_commits``: read
    transactions that ended with ``COMMIT`` (PostgreSQL, ADR 0022), which a server counts as
    commits too."""

    statements: int = 0
    commits: int = 0
    read_commits: int = 0


class Dialect(Protocol):
    """What differs between backends in how values travel."""

    name: str

    def placeholder(self, name: str, kind: str) -> str:
        """The parameter marker for ``name``; ``kind`` is json, ts, bool or plain."""
        ...

    def marker(self, kind: str) -> str:
        """A positional parameter marker (multi-row statements: SQLite looks a named
        parameter up by a linear scan, so binding N of them by name costs O(N²))."""
        ...

    def json_param(self, value: Any) -> Any: ...

    def json_nested(self, value: Any) -> Any:
        """A JSON column's value inside a set statement's JSON parameter: its JSON text, or
        (SQLite, whose ``->>`` gives an object's or array's text exactly as ``json_param``
        writes it) the value itself, spared a second encoding and its escaping."""
        ...

    def json_value(self, value: Any) -> Any: ...

    def ts_param(self, value: datetime | None) -> Any: ...

    def ts_value(self, value: Any) -> datetime | None: ...

    def bool_param(self, value: bool) -> Any: ...

    def array_param(self, values: Sequence[str]) -> Any:
        """A list of keys (SQLite: JSON text for ``json_each``; PostgreSQL: a text array)."""
        ...


# The last ``now`` whose ISO text a transition's metadata used: a transaction writes several
# transitions with the same ``now``. Replaced as one tuple, so threads never see a mixed pair.
_last_iso: tuple[datetime | None, str] = (None, "")


def _iso(now: datetime) -> str:
    global _last_iso
    last = _last_iso
    if last[0] is now:
        return last[1]
    text = now.isoformat()
    _last_iso = (now, text)
    return text


def enqueued_step_path(
    first: str, second: str, initial: JSONObject, enqueue: JSONObject
) -> list[JSONObject]:
    """The two transitions of a step inserted enqueued (its row's ``last_path``)."""
    return [
        {
            "uuid": first,
            "from": None,
            "to": StepState.PENDING.value,
            "event": "initial",
            "metadata": initial,
        },
        {
            "uuid": second,
            "from": StepState.PENDING.value,
            "to": StepState.ENQUEUED.value,
            "event": StepEvent.ENQUEUE.value,
            "metadata": enqueue,
        },
    ]


def _transition_metadata(event: str, now: datetime, extra: JSONObject | None) -> JSONObject:
    """A transition row's metadata: the event and its time, then the caller's keys."""
    meta: JSONObject = {"event": event, "timestamp": _iso(now)}
    if extra:
        meta.update(extra)
    return meta


# insert_steps statements by (dialect, the backend's query text, which steps are enqueued).
_INSERT_STEPS_SQL: dict[tuple[str, str, tuple[bool, ...]], str] = {}
# insert_tasks statements by (dialect, the backend's query text, how many rows).
_INSERT_TASKS_SQL: dict[tuple[str, str, int], str] = {}
# What a new task row takes from its caller's values (``insert_task``'s keys) ...
_TASK_VALUES = (
    "task_uuid",
    "named_task_uuid",
    "namespace",
    "name",
    "version",
    "context",
    "identity_hash",
    "initiator",
    "source_system",
    "reason",
    "tags",
    "priority",
    "correlation_id",
    "parent_correlation_id",
)
# ... and one VALUES row of insert_tasks, in the query's column order: (value, kind).
_TASK_ROW = (
    ("task_uuid", "plain"),
    ("named_task_uuid", "plain"),
    ("namespace", "plain"),
    ("name", "plain"),
    ("version", "plain"),
    ("state", "plain"),
    ("context", "json"),
    ("identity_hash", "plain"),
    ("initiator", "plain"),
    ("source_system", "plain"),
    ("reason", "plain"),
    ("tags", "json"),
    ("priority", "plain"),
    ("correlation_id", "plain"),
    ("parent_correlation_id", "plain"),
    ("now", "ts"),  # requested_at
    ("complete", "bool"),
    ("completed_at", "ts"),
    ("steps", "plain"),  # transition_count
    ("now", "ts"),  # state_entered_at
    ("now", "ts"),  # created_at
    ("now", "ts"),  # updated_at
    ("event", "plain"),
    ("metadata", "json"),
    ("transition_uuid", "plain"),
    ("processor_uuid", "plain"),
    ("path", "json"),
)
# Rows per multi-row INSERT: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
_TASKS_PER_INSERT = 200
_STEPS_PER_INSERT = 500


class Connection(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


_STEP_COLUMN_KINDS: Mapping[str, str] = {
    "inputs": "json",
    "results": "json",
    "checkpoint": "json",
    "processed_at": "ts",
    "last_attempted_at": "ts",
    "next_retry_at": "ts",
    "lease_expires_at": "ts",
    "enqueued_at": "ts",
    "in_process": "bool",
    "processed": "bool",
    "retryable": "bool",
    "attempts": "plain",
    "backoff_request_seconds": "plain",
    "claim_token": "plain",
    "claimed_by": "plain",
    "max_attempts": "plain",
    "priority": "plain",
}


class SqlTransaction:
    """One database transaction: the operations orchestration composes.

    Every state change is compare-and-set: a method returns ``False`` (or ``None``) when the
    row was not in the expected state, meaning somebody else moved first.
    """

    def __init__(
        self,
        conn: Connection,
        queries: Mapping[str, str],
        dialect: Dialect,
        stats: StoreStats,
        processor_uuid: str,
    ) -> None:
        self._conn = conn
        self._q = queries
        self._d = dialect
        self._stats = stats
        self.processor_uuid = processor_uuid
        self.wake_namespaces: set[str] = set()
        # Steps this transaction enqueued, and how many of those it claimed itself: after
        # commit, the store wakes that many fewer idle workers (see ``wake_count``).
        self.enqueued_step_uuids: set[str] = set()
        self.claimed_enqueued = 0
        # Tasks this transaction moved to a settled state (terminal or blocked by failures).
        self.settled_tasks: set[str] = set()
        # Committed early, with a claim (claim_enqueued_steps' ``commit``; PostgreSQL only).
        self.committed = False
        # The children of the steps claimed here, when the claim read them (PostgreSQL).
        self.claimed_successors: dict[str, Successors] = {}
        self._step_update_sql: dict[tuple[str, ...], str] = {}

    def wake_count(self) -> int | None:
        """How many idle workers to wake after commit: ``0`` none, ``None`` all of them (work
        was announced through ``wake_namespaces`` without counting the steps)."""
        if not self.wake_namespaces:
            return 0
        if not self.enqueued_step_uuids:
            return None
        return max(len(self.enqueued_step_uuids) - self.claimed_enqueued, 0)

    # -- plumbing -------------------------------------------------------------------------

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> Any:
        self._stats.statements += 1
        return self._conn.execute(sql, params or {})

    def _run(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.execute(self._q[name], params)

    def _one(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        # fetchall, not fetchone: it finishes the statement, so SQLite never sees it "in progress".
        rows = self._run(name, params).fetchall()
        return rows[0] if rows else None

    def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self._run(name, params).fetchall())

    def _json(self, value: Any) -> Any:
        return self._d.json_param(value)

    def _ts(self, value: datetime | None) -> Any:
        return self._d.ts_param(value)

    # -- templates ------------------------------------------------------------------------

    def upsert_named_task(
        self,
        namespace: str,
        name: str,
        version: str,
        configuration: JSONObject,
        identity_strategy: str,
        now: datetime,
    ) -> str:
        row = self._one(
            "upsert_named_task",
            {
                "named_task_uuid": new_uuid(),
                "namespace": namespace,
                "name": name,
                "version": version,
                "configuration": self._json(configuration),
                "identity_strategy": identity_strategy,
                "now": self._ts(now),
            },
        )
        return str(row["named_task_uuid"])

    def find_named_task(
        self, namespace: str, name: str, version: str
    ) -> tuple[str, JSONObject] | None:
        row = self._one(
            "find_named_task", {"namespace": namespace, "name": name, "version": version}
        )
        if row is None:
            return None
        return str(row["named_task_uuid"]), self._d.json_value(row["configuration"])

    def named_task_configuration(self, named_task_uuid: str) -> JSONObject | None:
        row = self._one("named_task_by_uuid", {"named_task_uuid": named_task_uuid})
        return None if row is None else self._d.json_value(row["configuration"])

    def list_named_tasks(self) -> list[tuple[str, JSONObject]]:
        return [
            (str(r["named_task_uuid"]), self._d.json_value(r["configuration"]))
            for r in self._all("list_named_tasks")
        ]

    # -- tasks ----------------------------------------------------------------------------

    def insert_task(
        self,
        values: Mapping[str, Any],
        now: datetime,
        metadata: JSONObject | None = None,
        moves: Sequence[tuple[TaskState, str, JSONObject | None]] = (),
    ) -> bool:
        """Insert a task row with its initial ``null -> pending`` transition (event
        ``initial``, ``metadata`` added to the row's metadata); ``False`` when its identity
        hash already exists (nothing written).

        ``moves`` ``(to_state, event, metadata)`` are transitions the new task makes at once
        (its first orchestration pass): the row is inserted in the last state and the trigger
        appends every transition row from ``last_path``, as ``transition_task_path`` would
        have, in the same statement. The caller checked them against the state table.
        """
        return bool(self.insert_tasks([NewTask(values, moves)], now, metadata))

    def insert_tasks(
        self,
        tasks: Sequence[NewTask],
        now: datetime,
        metadata: JSONObject | None = None,
        *,
        expect_all: bool = False,
    ) -> set[str]:
        """``insert_task`` of several tasks, one statement per 200; returns the uuids of the
        rows inserted. A task whose identity hash exists, or repeats an earlier task's of the
        list, is left out (nothing written for it).

        ``expect_all``: the caller predicts that every task is new (ADR 0023); the
        transaction fails with ``PassMispredicted`` if one is not (PostgreSQL: at ``COMMIT``,
        the inserts held and sent with it)."""
        inserted: set[str] = set()
        for sql, params, chunk, states in self._task_inserts(tasks, now, metadata):
            rows = self.execute(sql, params).fetchall()
            found = {str(row["task_uuid"]) for row in rows}
            for task, state in zip(chunk, states, strict=True):
                task_uuid = str(task.values["task_uuid"])
                if task_uuid in found:
                    self._task_moved(task_uuid, state, True)
            inserted |= found
        if expect_all and len(inserted) < len(tasks):
            raise PassMispredicted("a task of this creation has an identity that exists")
        return inserted

    def _task_inserts(
        self, tasks: Sequence[NewTask], now: datetime, metadata: JSONObject | None
    ) -> Iterator[tuple[str, list[Any], Sequence[NewTask], list[TaskState]]]:
        """``insert_tasks``' statements: each with its parameters, its tasks and the state
        each is inserted in."""
        initial = _transition_metadata("initial", now, metadata)
        shared = {"now": self._ts(now), "processor_uuid": self.processor_uuid}
        for start in range(0, len(tasks), _TASKS_PER_INSERT):
            chunk = tasks[start : start + _TASKS_PER_INSERT]
            params: list[Any] = []
            states: list[TaskState] = []
            for task in chunk:
                row, state = self._task_row(task.values, now, initial, task.moves)
                row.update(shared)
                params.extend(row[name] for name, _ in _TASK_ROW)
                states.append(state)
            yield self._insert_tasks_sql(len(chunk)), params, chunk, states

    def _task_row(
        self,
        values: Mapping[str, Any],
        now: datetime,
        initial: JSONObject,
        moves: Sequence[tuple[TaskState, str, JSONObject | None]],
    ) -> tuple[dict[str, Any], TaskState]:
        """One row's parameters for ``insert_tasks`` and the state it is inserted in."""
        path: list[JSONObject] = [
            {
                "uuid": new_uuid(),
                "from": None,
                "to": "pending",
                "event": "initial",
                "metadata": initial,
            }
        ]
        state = TaskState.PENDING
        for target, event, extra in moves:
            path.append(
                {
                    "uuid": new_uuid(),
                    "from": state.value,
                    "to": target.value,
                    "event": event,
                    "metadata": _transition_metadata(event, now, extra),
                }
            )
            state = target
        last = path[-1]
        row = {key: values[key] for key in _TASK_VALUES}
        row["context"] = self._json(row["context"])
        row["tags"] = self._json(row["tags"])
        row.update(
            state=state.value,
            complete=self._d.bool_param(state is TaskState.COMPLETE),
            completed_at=self._ts(now) if state is TaskState.COMPLETE else None,
            steps=len(path),
            event=last["event"],
            metadata=self._json(last["metadata"]),
            transition_uuid=last["uuid"],
            path=self._json(path) if moves else None,
        )
        return row, state

    def _insert_tasks_sql(self, count: int) -> str:
        template = self._q["insert_tasks"]
        key = (self._d.name, template, count)
        sql = _INSERT_TASKS_SQL.get(key)
        if sql is not None:
            return sql
        row = f"({', '.join(self._d.marker(kind) for _, kind in _TASK_ROW)})"
        sql = template.replace("/* rows */", ",\n       ".join([row] * count))
        if len(_INSERT_TASKS_SQL) >= 256:
            _INSERT_TASKS_SQL.clear()
        _INSERT_TASKS_SQL[key] = sql
        return sql

    def task_by_identity(self, identity_hash: str) -> str | None:
        row = self._one("task_by_identity", {"identity_hash": identity_hash})
        return None if row is None else str(row["task_uuid"])

    def get_task(self, task_uuid: str) -> TaskRecord | None:
        row = self._one("get_task", {"task_uuid": task_uuid})
        return None if row is None else self._task_record(row)

    def get_tasks(self, task_uuids: Iterable[str]) -> dict[str, TaskRecord]:
        """The rows of several tasks in one statement (absent ones are left out)."""
        wanted = list(task_uuids)
        if len(wanted) < 2:  # the one-row statement: cheaper than taking a list apart
            found = [self.get_task(task_uuid) for task_uuid in wanted]
            return {task.task_uuid: task for task in found if task is not None}
        rows = self._all("get_tasks", {"task_uuids": self._d.array_param(wanted)})
        return {str(r["task_uuid"]): self._task_record(r) for r in rows}

    def lock_tasks(self, task_uuids: Iterable[str]) -> dict[str, LockedTask]:
        """``lock_task`` for several tasks in one statement, locked in ``task_uuid`` order (the
        order every transaction locks tasks in); absent tasks are left out."""
        wanted = sorted(task_uuids)
        if len(wanted) < 2:  # the one-row statement: cheaper than taking a list apart
            locked = [self.lock_task(task_uuid) for task_uuid in wanted]
            return {task.task_uuid: task for task in locked if task is not None}
        return {
            str(r["task_uuid"]): LockedTask(
                str(r["task_uuid"]),
                TaskState(r["state"]),
                r["namespace"],
                str(r["named_task_uuid"]),
            )
            for r in self._all("lock_tasks", {"task_uuids": self._d.array_param(wanted)})
        }

    def lock_task(self, task_uuid: str) -> LockedTask | None:
        """The task's state, with the task row locked until the transaction ends."""
        row = self._one("lock_task", {"task_uuid": task_uuid})
        if row is None:
            return None
        return LockedTask(
            task_uuid, TaskState(row["state"]), row["namespace"], str(row["named_task_uuid"])
        )

    def transition_task(
        self,
        task_uuid: str,
        from_state: TaskState,
        to_state: TaskState,
        event: str,
        now: datetime,
        metadata: JSONObject | None = None,
    ) -> bool:
        """Compare-and-set the task state; a trigger appends its transition row."""
        return self.transition_task_path(task_uuid, from_state, [(to_state, event, metadata)], now)

    def transition_task_path(
        self,
        task_uuid: str,
        from_state: TaskState,
        path: Sequence[tuple[TaskState, str, JSONObject | None]],
        now: datetime,
    ) -> bool:
        """Compare-and-set the task from ``from_state`` through every ``(to_state, event,
        metadata)`` of ``path`` in one ``UPDATE``: the row ends in the last state and a trigger
        appends one transition row per element, in order (one round trip for an orchestration
        pass instead of one per transition). The caller checked each step against the state
        table.
        """
        params = self._task_path_params(task_uuid, from_state, path, now)
        found = self._run("bump_task", params).fetchall()
        return self._task_moved(task_uuid, path[-1][0], bool(found))

    def transition_task_paths(
        self,
        paths: Sequence[tuple[str, TaskState, Sequence[tuple[TaskState, str, JSONObject | None]]]],
        now: datetime,
    ) -> bool:
        """``transition_task_path`` of several tasks (``(task, from_state, path)``) in one
        ``UPDATE``.

        Returns:
            Whether every task moved (each that did is moved, whatever the others did).
        """
        if len(paths) == 1:
            return self.transition_task_path(*paths[0], now)
        if not paths:
            return True
        rows = self._task_paths_rows(paths, now)
        params = {
            "paths": self._json(rows),
            "keys": self._d.array_param([task_uuid for task_uuid, _, _ in paths]),
            "now": self._ts(now),
            "processor_uuid": self.processor_uuid,
        }
        moved = {str(r["task_uuid"]) for r in self._all("bump_tasks", params)}
        for task_uuid, _, path in paths:
            self._task_moved(task_uuid, path[-1][0], task_uuid in moved)
        return len(moved) == len(paths)

    def _task_paths_rows(
        self,
        paths: Sequence[tuple[str, TaskState, Sequence[tuple[TaskState, str, JSONObject | None]]]],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The rows of ``bump_tasks``: ``bump_task``'s parameters of each task."""
        keys = ("task_uuid", "from_state", "to_state", "event", "metadata", "transition_uuid")
        rows = []
        for task_uuid, from_state, path in paths:
            params = self._task_path_params(task_uuid, from_state, path, now, self._d.json_nested)
            row = {key: params[key] for key in keys}
            row["steps"], row["path"] = params["steps"], params["path"]
            rows.append(row)
        return rows

    def _task_path_params(
        self,
        task_uuid: str,
        from_state: TaskState,
        path: Sequence[tuple[TaskState, str, JSONObject | None]],
        now: datetime,
        encode: Callable[[Any], Any] | None = None,
    ) -> dict[str, Any]:
        """Parameters of ``bump_task``: the last transition in ``last_*``, all of them (when
        more than one) in ``path``; JSON values through ``encode`` (default ``json_param``)."""
        encode = encode or self._d.json_param
        to_state, event, metadata = path[-1]
        transition_uuid = new_uuid()
        encoded_path: Any = None
        if len(path) > 1:
            rows: list[JSONObject] = []
            state = from_state
            for index, (target, step_event, step_metadata) in enumerate(path):
                rows.append(
                    {
                        "uuid": transition_uuid if index == len(path) - 1 else new_uuid(),
                        "from": state.value,
                        "to": target.value,
                        "event": step_event,
                        "metadata": _transition_metadata(step_event, now, step_metadata),
                    }
                )
                state = target
            encoded_path = encode(rows)
        return {
            "task_uuid": task_uuid,
            "from_state": from_state.value,
            "to_state": to_state.value,
            "now": self._ts(now),
            "event": event,
            "metadata": encode(_transition_metadata(event, now, metadata)),
            "transition_uuid": transition_uuid,
            "processor_uuid": self.processor_uuid,
            "steps": len(path),
            "path": encoded_path,
        }

    def _task_moved(self, task_uuid: str, to_state: TaskState, moved: bool) -> bool:
        """Note a task that a move settled (its waiters are woken after commit)."""
        if moved and to_state in SETTLED_TASK_STATES:
            self.settled_tasks.add(task_uuid)
        return moved

    def tasks_in_states(
        self, states: Iterable[TaskState], entered_before: datetime, limit: int
    ) -> list[str]:
        rows = self._all(
            "tasks_in_states",
            {
                "states": json.dumps([s.value for s in states]),
                "entered_before": self._ts(entered_before),
                "limit": limit,
            },
        )
        return [str(r["task_uuid"]) for r in rows]

    def due_retry_tasks(self, now: datetime, limit: int) -> list[str]:
        rows = self._all("due_retry_tasks", {"now": self._ts(now), "limit": limit})
        return [str(r["task_uuid"]) for r in rows]

    # -- steps ----------------------------------------------------------------------------

    def insert_step(self, values: Mapping[str, Any], now: datetime) -> None:
        """Insert a step row with its initial ``null -> pending`` transition (event ``initial``);
        a second step of the same name in the task is a no-op."""
        params = dict(values)
        params["inputs"] = None if params["inputs"] is None else self._json(params["inputs"])
        params["retryable"] = self._d.bool_param(bool(params["retryable"]))
        params["now"] = self._ts(now)
        params["metadata"] = self._json(_transition_metadata("initial", now, None))
        params["transition_uuid"] = new_uuid()
        self._run("insert_step", params)

    def insert_edge(
        self, task_uuid: str, from_step_uuid: str, to_step_uuid: str, name: str, now: datetime
    ) -> None:
        self._run(
            "insert_edge",
            {
                "task_uuid": task_uuid,
                "from_step_uuid": from_step_uuid,
                "to_step_uuid": to_step_uuid,
                "name": name,
                "now": self._ts(now),
            },
        )

    def insert_steps(
        self,
        task_uuid: str,
        namespace: str,
        priority: int,
        steps: Sequence[NewStep],
        now: datetime,
    ) -> None:
        """Insert a new task's steps in one statement, each with its ``null -> pending``
        transition; a step with ``enqueue`` set is inserted ``enqueued`` (``enqueued_at`` =
        ``now``) with its ``pending -> enqueued`` row too (event ``enqueue``), as if
        ``transition_step`` had moved it. A second step of the same name is a no-op."""
        self.insert_task_steps([(task_uuid, namespace, priority, steps)], now)

    def insert_task_steps(
        self, tasks: Sequence[tuple[str, str, int, Sequence[NewStep]]], now: datetime
    ) -> None:
        """``insert_steps`` of several new tasks ``(task_uuid, namespace, priority, steps)``,
        one statement per 500 steps."""
        rows = [
            (task_uuid, namespace, priority, step)
            for task_uuid, namespace, priority, steps in tasks
            for step in steps
        ]
        initial = _transition_metadata("initial", now, None)
        enqueue = _transition_metadata("enqueue", now, None)
        at, off = self._ts(now), self._d.bool_param(False)
        initial_json, enqueue_json = self._json(initial), self._json(enqueue)
        for start in range(0, len(rows), _STEPS_PER_INSERT):
            chunk = rows[start : start + _STEPS_PER_INSERT]
            params: list[Any] = []
            for task_uuid, namespace, priority, step in chunk:
                first = new_uuid()
                params += (
                    step.workflow_step_uuid,
                    task_uuid,
                    step.name,
                    step.template_step_name,
                    namespace,
                    self._d.bool_param(step.retryable),
                    step.max_attempts,
                    off,
                    off,
                    step.inputs,
                    priority,
                )
                if step.enqueue:
                    second = new_uuid()
                    path = enqueued_step_path(first, second, initial, enqueue)
                    params += (at, at, at, enqueue_json, second, self._json(path))
                else:
                    params += (at, at, initial_json, first)
            self.execute(self._insert_steps_sql(tuple(row[3].enqueue for row in chunk)), params)

    def _insert_steps_sql(self, enqueue: tuple[bool, ...]) -> str:
        """``INSERT ... VALUES`` with one row per step (cached by which ones are enqueued):
        a multi-row ``VALUES`` binds plain parameters, where a JSON array would have to be
        taken apart in SQL (on SQLite 4x slower for a 4-step task)."""
        template = self._q["insert_steps"]
        key = (self._d.name, template, enqueue)
        sql = _INSERT_STEPS_SQL.get(key)
        if sql is not None:
            return sql
        mark = self._d.marker
        columns = (
            f"{mark('plain')}, {mark('plain')}, {mark('plain')}, {mark('plain')}, "
            f"{mark('plain')}, '{{state}}', {mark('bool')}, {mark('plain')}, 0, {mark('bool')}, "
            f"{mark('bool')}, {mark('json')}, {mark('plain')}"
        )
        # enqueued_at, transition_count, created_at, updated_at, last_event, last_metadata,
        # last_transition_uuid, last_path
        enqueued = (
            columns.format(state="enqueued")
            + f", {mark('ts')}, 2, {mark('ts')}, {mark('ts')}, 'enqueue', {mark('json')}, "
            + f"{mark('plain')}, {mark('json')}"
        )
        pending = (
            columns.format(state="pending")
            + f", NULL, 1, {mark('ts')}, {mark('ts')}, 'initial', {mark('json')}, "
            + f"{mark('plain')}, NULL"
        )
        rows = [f"({enqueued if queued else pending})" for queued in enqueue]
        sql = template.replace("/* rows */", ",\n       ".join(rows))
        if len(_INSERT_STEPS_SQL) >= 256:
            _INSERT_STEPS_SQL.clear()
        _INSERT_STEPS_SQL[key] = sql
        return sql

    def insert_edges(
        self, task_uuid: str, edges: Sequence[tuple[str, str]], name: str, now: datetime
    ) -> None:
        """Insert ``(from_step_uuid, to_step_uuid)`` edges named ``name`` in one statement;
        duplicates are ignored."""
        self._run(
            "insert_edges",
            {
                "task_uuid": task_uuid,
                "name": name,
                "now": self._ts(now),
                "edges": self._json(edges),
            },
        )

    def insert_task_edges(
        self, edges: Sequence[tuple[str, str, str]], name: str, now: datetime
    ) -> None:
        """Insert ``(from_step_uuid, to_step_uuid, task_uuid)`` edges of several tasks, named
        ``name``, in one statement; duplicates are ignored."""
        self._run(
            "insert_task_edges", {"name": name, "now": self._ts(now), "edges": self._json(edges)}
        )

    def task_steps(self, task_uuid: str) -> list[StepRecord]:
        return [self._step_record(r) for r in self._all("task_steps", {"task_uuid": task_uuid})]

    def task_with_steps(
        self, task_uuid: str, states: Collection[TaskState] | None = None
    ) -> tuple[TaskRecord | None, list[StepRecord]]:
        """The task and its steps: what a task view shows. No steps if there is no such task,
        or (``states``) if it is in none of those states (``Tasker.wait`` polling a task
        that has not settled reads no steps)."""
        task = self.get_task(task_uuid)
        if task is None or (states is not None and task.state not in states):
            return task, []
        return task, self.task_steps(task_uuid)

    def get_step(self, step_uuid: str) -> StepRecord | None:
        row = self._one("get_step", {"workflow_step_uuid": step_uuid})
        return None if row is None else self._step_record(row)

    def task_edges(self, task_uuid: str) -> list[tuple[str, str, str]]:
        rows = self._all("task_edges", {"task_uuid": task_uuid})
        return [(r["from_name"], r["to_name"], r["edge_name"]) for r in rows]

    def ready_steps(self, task_uuid: str, now: datetime) -> list[tuple[str, StepState]]:
        """Steps of a task that may run now (execution.md §5), oldest first."""
        return self.step_overview(task_uuid, now)[0]

    def step_overview(
        self, task_uuid: str, now: datetime
    ) -> tuple[list[tuple[str, StepState]], dict[StepState, int]]:
        """A task's ready steps and its step counts by state, read in one statement (the
        readiness rule is written once per backend, in this query)."""
        ready: list[tuple[str, StepState]] = []
        counts: dict[StepState, int] = {}
        for r in self._all("step_overview", {"task_uuid": task_uuid, "now": self._ts(now)}):
            if r["kind"] == "ready":
                ready.append((str(r["workflow_step_uuid"]), StepState(r["state"])))
            else:
                counts[StepState(r["state"])] = int(r["n"])
        return ready, counts

    def step_overviews(
        self, task_uuids: Sequence[str], now: datetime
    ) -> dict[str, tuple[list[tuple[str, StepState]], dict[StepState, int]]]:
        """``step_overview`` of several tasks in one statement, keyed by task."""
        if len(task_uuids) == 1:
            return {task_uuids[0]: self.step_overview(task_uuids[0], now)}
        found: dict[str, tuple[list[tuple[str, StepState]], dict[StepState, int]]] = {
            task_uuid: ([], {}) for task_uuid in task_uuids
        }
        if not task_uuids:
            return found
        params = {"task_uuids": self._d.array_param(list(task_uuids)), "now": self._ts(now)}
        self._add_overview_rows(found, self._all("step_overviews", params))
        return found

    @staticmethod
    def _add_overview_rows(found: dict[str, StepOverview], rows: Iterable[Any]) -> None:
        """Add the rows of ``step_overviews`` to each task's (empty) overview in ``found``."""
        for r in rows:
            ready, counts = found[str(r["task_uuid"])]
            if r["kind"] == "ready":
                ready.append((str(r["workflow_step_uuid"]), StepState(r["state"])))
            else:
                counts[StepState(r["state"])] = int(r["n"])

    def enqueue_steps(
        self,
        steps: Sequence[tuple[str, StepState]],
        to_state: StepState,
        event: str,
        now: datetime,
        *,
        through: Mapping[StepState, tuple[StepState, str]] | None = None,
    ) -> set[str]:
        """Compare-and-set each ``(step, state)`` to ``to_state`` in one ``UPDATE``, setting
        ``enqueued_at``; a trigger appends each step's transition row. A step in a state that
        ``through`` maps to ``(state, event)`` passes through that state first (two rows, as
        two ``transition_step`` calls would write).

        Returns:
            The steps that moved; one that was no longer in its state is absent.
        """
        if len(steps) < 2:  # the one-row statement: cheaper than taking a list apart
            enqueued: set[str] = set()
            for step_uuid, state in steps:
                via = (through or {}).get(state)
                moved = self.transition_step(
                    step_uuid,
                    "",
                    state,
                    to_state,
                    event,
                    now,
                    changes={"enqueued_at": now},
                    via=None if via is None else (*via, None),
                )
                if moved is not None:
                    enqueued.add(step_uuid)
            return enqueued
        rows = self._all(
            "enqueue_steps", self._enqueue_params(steps, to_state, event, now, through)
        )
        return {str(r["workflow_step_uuid"]) for r in rows}

    def _enqueue_params(
        self,
        steps: Sequence[tuple[str, StepState]],
        to_state: StepState,
        event: str,
        now: datetime,
        through: Mapping[StepState, tuple[StepState, str]] | None,
    ) -> dict[str, Any]:
        """The parameters of ``enqueue_steps``' statement: one row per step in ``moves``."""
        metadata = _transition_metadata(event, now, None)
        moves = []
        for step_uuid, state in steps:
            transition_uuid = new_uuid()
            via = (through or {}).get(state)
            path: Any = None
            if via is not None:
                via_state, via_event = via
                path = self._d.json_nested(
                    [
                        {
                            "uuid": new_uuid(),
                            "from": state.value,
                            "to": via_state.value,
                            "event": via_event,
                            "metadata": _transition_metadata(via_event, now, None),
                        },
                        {
                            "uuid": transition_uuid,
                            "from": via_state.value,
                            "to": to_state.value,
                            "event": event,
                            "metadata": metadata,
                        },
                    ]
                )
            moves.append(
                {
                    "step_uuid": step_uuid,
                    "from_state": state.value,
                    "steps": 1 if path is None else 2,
                    "path": path,
                    "transition_uuid": transition_uuid,
                }
            )
        return {
            "moves": self._json(moves),
            "keys": self._d.array_param([step_uuid for step_uuid, _ in steps]),
            "to_state": to_state.value,
            "event": event,
            "metadata": self._json(metadata),
            "now": self._ts(now),
        }

    def step_state_counts(self, task_uuid: str) -> dict[StepState, int]:
        rows = self._all("step_state_counts", {"task_uuid": task_uuid})
        return {StepState(r["state"]): int(r["n"]) for r in rows}

    def transition_step(
        self,
        step_uuid: str,
        task_uuid: str,  # noqa: ARG002 - the row knows its task; callers name it for readers
        from_state: StepState,
        to_state: StepState,
        event: str,
        now: datetime,
        *,
        changes: Mapping[str, Any] | None = None,
        claim_token: str | None = None,
        metadata: JSONObject | None = None,
        full_row: bool = False,
        via: tuple[StepState, str, JSONObject | None] | None = None,
    ) -> StepTransition | None:
        """Compare-and-set a step's state and apply row changes in one ``UPDATE``; a trigger
        appends the transition row.

        ``claim_token`` additionally requires the claim to be the current one (fencing).
        ``changes`` maps columns to new values; key ``attempts_delta`` adds to ``attempts``.
        ``full_row`` also returns the whole step row as it is after the change.
        ``via`` ``(state, event, metadata)`` passes through an intermediate state first: two
        transition rows, ``from_state -> state`` then ``state -> to_state``, one ``UPDATE``
        (the caller checked both against the state table).

        Returns:
            The written transition with the step's row after it, or ``None`` when the step
            was not in ``from_state`` (or the claim was superseded): nothing was written.
        """
        transition_uuid = new_uuid()
        last_metadata = _transition_metadata(event, now, metadata)
        params: dict[str, Any] = {
            "workflow_step_uuid": step_uuid,
            "to_state": to_state.value,
            "from_state": from_state.value,
            "now": self._ts(now),
            "event": event,
            "metadata": self._json(last_metadata),
            "transition_uuid": transition_uuid,
            "steps": 1,
            "path": None,
        }
        via_uuid: str | None = None
        if via is not None:
            via_state, via_event, via_metadata = via
            via_uuid = new_uuid()
            params["steps"] = 2
            params["path"] = self._json(
                [
                    {
                        "uuid": via_uuid,
                        "from": from_state.value,
                        "to": via_state.value,
                        "event": via_event,
                        "metadata": _transition_metadata(via_event, now, via_metadata),
                    },
                    {
                        "uuid": transition_uuid,
                        "from": via_state.value,
                        "to": to_state.value,
                        "event": event,
                        "metadata": last_metadata,
                    },
                ]
            )
        columns: tuple[str, ...] = ()
        if changes:
            columns = tuple(sorted(changes))
            for column, value in changes.items():
                kind = "plain" if column == "attempts_delta" else _STEP_COLUMN_KINDS[column]
                if value is None:
                    params[f"c_{column}"] = None
                elif kind == "json":
                    params[f"c_{column}"] = self._json(value)
                elif kind == "ts":
                    params[f"c_{column}"] = self._ts(value)
                elif kind == "bool":
                    params[f"c_{column}"] = self._d.bool_param(bool(value))
                else:
                    params[f"c_{column}"] = value
        if claim_token is not None:
            params["claim_token"] = claim_token
        sql = self._step_update(columns, claim_token is not None, full_row)
        rows = self.execute(sql, params).fetchall()
        if not rows:
            return None
        row = rows[0]
        return StepTransition(
            transition_uuid,
            row["template_step_name"],
            int(row["attempts"]),
            bool(row["retryable"]),
            int(row["max_attempts"]),
            self._step_record(row) if full_row else None,
            via_uuid,
        )

    def _step_update(self, columns: tuple[str, ...], fenced: bool, full_row: bool) -> str:
        key = (*columns, "+fenced" if fenced else "", "+row" if full_row else "")
        sql = self._step_update_sql.get(key)
        if sql is not None:
            return sql
        ph = self._d.placeholder
        sets = [
            f"state = {ph('to_state', 'plain')}",
            f"transition_count = transition_count + {ph('steps', 'plain')}",
            f"last_path = {ph('path', 'json')}",
            f"updated_at = {ph('now', 'ts')}",
            f"last_event = {ph('event', 'plain')}",
            f"last_metadata = {ph('metadata', 'json')}",
            f"last_transition_uuid = {ph('transition_uuid', 'plain')}",
        ]
        for column in columns:
            if column == "attempts_delta":
                sets.append(f"attempts = attempts + {ph('c_attempts_delta', 'plain')}")
            else:
                sets.append(f"{column} = {ph('c_' + column, _STEP_COLUMN_KINDS[column])}")
        where = [
            f"workflow_step_uuid = {ph('workflow_step_uuid', 'plain')}",
            f"state = {ph('from_state', 'plain')}",
        ]
        if fenced:
            where.append(f"claim_token = {ph('claim_token', 'plain')}")
        sql = f"UPDATE workflow_steps SET {', '.join(sets)} WHERE {' AND '.join(where)} " + (
            "RETURNING *"
            if full_row
            else "RETURNING template_step_name, attempts, retryable, max_attempts"
        )
        self._step_update_sql[key] = sql
        return sql

    def insert_result_audit(
        self,
        *,
        step_uuid: str,
        transition_uuid: str,
        task_uuid: str,
        worker_uuid: str | None,
        correlation_id: str | None,
        success: bool,
        execution_time_ms: float | None,
        attempt: int,
        now: datetime,
    ) -> None:
        self._run(
            "insert_result_audit",
            {
                "uuid": new_uuid(),
                "workflow_step_uuid": step_uuid,
                "transition_uuid": transition_uuid,
                "task_uuid": task_uuid,
                "now": self._ts(now),
                "worker_uuid": worker_uuid,
                "correlation_id": correlation_id,
                "success": self._d.bool_param(success),
                "execution_time_ms": execution_time_ms,
                "attempt": attempt,
            },
        )

    def insert_result_audits(self, audits: Sequence[Mapping[str, Any]]) -> None:
        """``insert_result_audit`` for several results in one statement; each mapping holds
        that method's keyword arguments."""
        if len(audits) < 2:  # the one-row statement: cheaper than taking a list apart
            for audit in audits:
                self.insert_result_audit(**audit)
            return
        rows = [
            {
                "uuid": new_uuid(),
                "workflow_step_uuid": a["step_uuid"],
                "transition_uuid": a["transition_uuid"],
                "task_uuid": a["task_uuid"],
                "now": self._ts_text(a["now"]),
                "worker_uuid": a["worker_uuid"],
                "correlation_id": a["correlation_id"],
                "success": bool(a["success"]),
                "execution_time_ms": a["execution_time_ms"],
                "attempt": a["attempt"],
            }
            for a in audits
        ]
        self._run("insert_result_audits", {"audits": self._json(rows)})

    def complete_fenced_steps(
        self,
        results: Sequence[FencedResult],
        from_state: StepState,
        via: tuple[StepState, str],
        to_state: StepState,
        event: str,
    ) -> dict[str, str]:
        """``transition_step`` with ``via`` for several claimed steps in one ``UPDATE``: store
        each step's result, end its claim, mark it processed and move it ``from_state -> via
        -> to_state`` (two transition rows each), each only under its own claim token.

        Returns:
            The transition uuid of the ``via`` row of every step that moved; a step whose claim
            was superseded (or that was not in ``from_state``) is absent, nothing written for it.
        """
        via_state, via_event = via
        if len(results) < 2:  # the one-row statement: cheaper than taking a list apart
            moved_one: dict[str, str] = {}
            for r in results:
                moved = self.transition_step(
                    r.step_uuid,
                    "",
                    from_state,
                    to_state,
                    event,
                    r.now,
                    changes={
                        "in_process": False,
                        "results": r.results,
                        "claim_token": None,
                        "lease_expires_at": None,
                        "processed": True,
                        "processed_at": r.now,
                    },
                    claim_token=r.claim_token,
                    via=(via_state, via_event, r.via_metadata),
                )
                if moved is not None and moved.via_transition_uuid is not None:
                    moved_one[r.step_uuid] = moved.via_transition_uuid
            return moved_one
        rows, moved_via = self._fenced_rows(results, from_state, via, to_state, event)
        found = self._all(
            "complete_fenced_steps",
            {
                "results": self._json(rows),
                "keys": self._d.array_param([r.step_uuid for r in results]),
                "to_state": to_state.value,
                "event": event,
            },
        )
        return {
            str(r["workflow_step_uuid"]): moved_via[str(r["workflow_step_uuid"])] for r in found
        }

    def _fenced_rows(
        self,
        results: Sequence[FencedResult],
        from_state: StepState,
        via: tuple[StepState, str],
        to_state: StepState,
        event: str,
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The rows of ``complete_fenced_steps``' statement, and each step's ``via``
        transition uuid."""
        via_state, via_event = via
        rows = []
        moved_via: dict[str, str] = {}
        for r in results:
            via_uuid, transition_uuid = new_uuid(), new_uuid()
            moved_via[r.step_uuid] = via_uuid
            last_metadata = _transition_metadata(event, r.now, None)
            path = [
                {
                    "uuid": via_uuid,
                    "from": from_state.value,
                    "to": via_state.value,
                    "event": via_event,
                    "metadata": _transition_metadata(via_event, r.now, r.via_metadata),
                },
                {
                    "uuid": transition_uuid,
                    "from": via_state.value,
                    "to": to_state.value,
                    "event": event,
                    "metadata": last_metadata,
                },
            ]
            rows.append(
                {
                    "step_uuid": r.step_uuid,
                    "from_state": from_state.value,
                    "claim_token": r.claim_token,
                    "results": self._d.json_nested(r.results),
                    "now": self._ts_text(r.now),
                    "path": self._d.json_nested(path),
                    "metadata": self._d.json_nested(last_metadata),
                    "transition_uuid": transition_uuid,
                }
            )
        return rows, moved_via

    def lock_and_complete_fenced_steps(
        self,
        task_uuids: Sequence[str],
        results: Sequence[FencedResult],
        audits: Sequence[Mapping[str, Any]],
        from_state: StepState,
        via: tuple[StepState, str],
        to_state: StepState,
        event: str,
        now: datetime,  # noqa: ARG002 - the time a backend that reads ahead reads steps at
    ) -> tuple[dict[str, LockedTask], dict[str, str], dict[str, StepOverview]]:
        """``lock_tasks``, then ``complete_fenced_steps`` of the results of the tasks found,
        then ``insert_result_audits`` of the results stored (``audits`` holds each result's
        audit row, in the order of ``results``, its ``transition_uuid`` left to fill in).

        Returns:
            The tasks locked, the ``via`` transition uuid of every step that moved, and the
            ``step_overview`` (at ``now``) of tasks a backend read ahead of being asked (none
            here; PostgreSQL sends the reads together).
        """
        locked = self.lock_tasks(task_uuids)
        found = [(r, a) for r, a in zip(results, audits, strict=True) if a["task_uuid"] in locked]
        moved = self.complete_fenced_steps([r for r, _ in found], from_state, via, to_state, event)
        self.insert_result_audits(
            [{**a, "transition_uuid": moved[r.step_uuid]} for r, a in found if r.step_uuid in moved]
        )
        return locked, moved, {}

    predicts_passes = False
    """Whether orchestration should predict passes (``lock_and_complete_predicted``): only
    where that saves a round trip (PostgreSQL)."""

    def lock_and_complete_predicted(
        self,
        results: Sequence[FencedResult],
        audits: Sequence[Mapping[str, Any]],
        from_state: StepState,
        via: tuple[StepState, str],
        to_state: StepState,
        event: str,
        now: datetime,
        passes: Sequence[PredictedPass],
    ) -> dict[str, LockedTask]:
        """``lock_and_complete_fenced_steps`` of one result per pass, under the premises of
        ``passes`` (see ``PredictedPass``), which hold by the end of the transaction or fail it
        with ``PassMispredicted``; the caller then redoes the transaction without predicting.
        Here they are checked at once; PostgreSQL checks them in SQL, in the same round trip
        as everything up to ``COMMIT``.

        Returns:
            Each pass's task, as predicted (``PredictedPass.task``).
        """
        task_uuids = [p.task.task_uuid for p in passes]
        locked, moved, overviews = self.lock_and_complete_fenced_steps(
            task_uuids, results, audits, from_state, via, to_state, event, now
        )
        missing = [task_uuid for task_uuid in task_uuids if task_uuid not in overviews]
        overviews = {**overviews, **(self.step_overviews(missing, now) if missing else {})}
        for p in passes:
            task = locked.get(p.task.task_uuid)
            ready, counts = overviews.get(p.task.task_uuid, ([], {}))
            if (
                task is None
                or task.state is not TaskState.STEPS_IN_PROCESS
                or p.step_uuid not in moved
                or counts.get(StepState.ERROR, 0)
                or tuple(step_uuid for step_uuid, _ in ready) != p.ready
                or any(state is not StepState.PENDING for _, state in ready)
                or (p.last and any(s not in SATISFIED_STEP_STATES for s, n in counts.items() if n))
            ):
                raise PassMispredicted(
                    f"the predicted pass of task {p.task.task_uuid} did not hold"
                )
        return {p.task.task_uuid: p.task for p in passes}

    def _ts_text(self, value: datetime) -> str:
        """A timestamp as text inside a JSON parameter, as the backend reads timestamps."""
        param = self._d.ts_param(value)
        return param if isinstance(param, str) else value.isoformat()

    def claim_candidates(
        self, namespaces: Sequence[str] | None, limit: int
    ) -> list[tuple[str, str, int]]:
        if namespaces:
            params = {"namespaces": json.dumps(list(namespaces)), "limit": limit}
            rows = self._all("claim_candidates_in", params)
        else:
            rows = self._all("claim_candidates_any", {"limit": limit})
        return [
            (str(r["workflow_step_uuid"]), str(r["task_uuid"]), int(r["attempts"])) for r in rows
        ]

    def start_steps(
        self,
        tokens: Mapping[str, str],
        event: str,
        now: datetime,
        *,
        worker_id: str,
        lease_expires_at: datetime,
        metadata: JSONObject | None = None,
    ) -> dict[str, StepRecord]:
        """Claim several enqueued steps in one ``UPDATE``: ``enqueued -> in_progress``,
        ``attempts + 1``, each step under its own claim token (``tokens`` maps step to token),
        each with its own transition row (a trigger appends it, as for ``transition_step``).

        Returns:
            The row of every step that moved, as the claim left it; a step that was no longer
            ``enqueued`` is absent (nothing was written for it).
        """
        if len(tokens) < 2:  # the one-row statement: cheaper than taking a list apart
            return self._start_step(tokens, event, now, worker_id, lease_expires_at, metadata)
        claims = [
            {
                "step_uuid": step_uuid,
                "from_state": StepState.ENQUEUED.value,
                "claim_token": token,
                "transition_uuid": new_uuid(),
            }
            for step_uuid, token in tokens.items()
        ]
        rows = self._all(
            "start_steps",
            {
                "claims": self._json(claims),
                "keys": self._d.array_param(list(tokens)),
                "now": self._ts(now),
                "event": event,
                "metadata": self._json(_transition_metadata(event, now, metadata)),
                "worker_id": worker_id,
                "lease_expires_at": self._ts(lease_expires_at),
            },
        )
        return {str(r["workflow_step_uuid"]): self._step_record(r) for r in rows}

    def claim_enqueued_steps(
        self,
        namespaces: Sequence[str] | None,
        limit: int,
        event: str,
        now: datetime,
        *,
        worker_id: str,
        lease_expires_at: datetime,
        metadata: JSONObject | None = None,
        commit: bool = False,  # noqa: ARG002 (a hint this store does not need)
    ) -> list[tuple[StepRecord, str]]:
        """Claim up to ``limit`` enqueued steps (``claim_candidates``, then ``start_steps``
        with a new claim token each). ``commit`` allows a store to commit the transaction
        with the claim (``committed``); this one commits when the transaction ends.

        Returns:
            Each claimed step's row as the claim left it (``attempts`` already counts this
            run) with its claim token, in the candidates' order.
        """
        candidates = self.claim_candidates(namespaces, limit)
        tokens = {step_uuid: new_uuid() for step_uuid, _, _ in candidates}
        rows = self.start_steps(
            tokens,
            event,
            now,
            worker_id=worker_id,
            lease_expires_at=lease_expires_at,
            metadata=metadata,
        )
        return [(rows[s], tokens[s]) for s, _, _ in candidates if s in rows]

    def _start_step(
        self,
        tokens: Mapping[str, str],
        event: str,
        now: datetime,
        worker_id: str,
        lease_expires_at: datetime,
        metadata: JSONObject | None,
    ) -> dict[str, StepRecord]:
        """``start_steps`` of at most one step, by ``transition_step``."""
        started: dict[str, StepRecord] = {}
        for step_uuid, token in tokens.items():
            moved = self.transition_step(
                step_uuid,
                "",
                StepState.ENQUEUED,
                StepState.IN_PROGRESS,
                event,
                now,
                changes={
                    "in_process": True,
                    "attempts_delta": 1,
                    "last_attempted_at": now,
                    "claim_token": token,
                    "claimed_by": worker_id,
                    "lease_expires_at": lease_expires_at,
                },
                metadata=metadata,
                full_row=True,
            )
            if moved is not None and moved.record is not None:
                started[step_uuid] = moved.record
        return started

    def ancestor_results(self, step_uuid: str) -> dict[str, JSONObject]:
        rows = self._all("ancestor_results", {"workflow_step_uuid": step_uuid})
        return {str(r["name"]): self._d.json_value(r["results"]) for r in rows}

    def ancestor_results_of(self, step_uuids: Sequence[str]) -> dict[str, dict[str, JSONObject]]:
        """``ancestor_results`` of several steps in one statement, keyed by step."""
        if len(step_uuids) < 2:  # the one-row statement: cheaper than taking a list apart
            return {step_uuid: self.ancestor_results(step_uuid) for step_uuid in step_uuids}
        found: dict[str, dict[str, JSONObject]] = {step_uuid: {} for step_uuid in step_uuids}
        params = {"step_uuids": self._d.array_param(list(step_uuids))}
        for r in self._all("ancestor_results_of", params):
            found[str(r["root"])][str(r["name"])] = self._d.json_value(r["results"])
        return found

    def heartbeat(self, step_uuid: str, claim_token: str, lease_expires_at: datetime) -> bool:
        cur = self._run(
            "heartbeat",
            {
                "workflow_step_uuid": step_uuid,
                "claim_token": claim_token,
                "lease_expires_at": self._ts(lease_expires_at),
            },
        )
        return bool(cur.rowcount == 1)

    def save_checkpoint(
        self,
        step_uuid: str,
        claim_token: str,
        *,
        cursor: Any,
        items_processed: int,
        accumulated_results: Any,
        lease_expires_at: datetime,
        now: datetime,
    ) -> bool:
        """Write a checkpoint in one statement, only under the current claim (R4.1)."""
        cur = self._run(
            "save_checkpoint",
            {
                "workflow_step_uuid": step_uuid,
                "claim_token": claim_token,
                "cursor": json.dumps(cursor),
                "items_processed": items_processed,
                "accumulated_results": json.dumps(accumulated_results),
                "lease_expires_at": self._ts(lease_expires_at),
                "now": self._ts(now),
            },
        )
        return bool(cur.rowcount == 1)

    def expired_leases(self, now: datetime, limit: int) -> list[tuple[str, str, str, str]]:
        rows = self._all("expired_leases", {"now": self._ts(now), "limit": limit})
        return [
            (
                str(r["workflow_step_uuid"]),
                str(r["task_uuid"]),
                str(r["claim_token"]),
                str(r["claimed_by"]),
            )
            for r in rows
        ]

    # -- DLQ, history, introspection ------------------------------------------------------

    def insert_dlq_entry(
        self,
        task_uuid: str,
        original_state: str,
        reason: str,
        snapshot: JSONObject,
        metadata: JSONObject,
        now: datetime,
    ) -> bool:
        cur = self._run(
            "insert_dlq_entry",
            {
                "uuid": new_uuid(),
                "task_uuid": task_uuid,
                "original_state": original_state,
                "dlq_reason": reason,
                "task_snapshot": self._json(snapshot),
                "metadata": self._json(metadata),
                "now": self._ts(now),
            },
        )
        return bool(cur.rowcount == 1)

    def task_transitions(self, task_uuid: str) -> list[TransitionRecord]:
        return [
            self._transition(r) for r in self._all("task_transitions", {"task_uuid": task_uuid})
        ]

    def step_transitions(self, step_uuid: str) -> list[TransitionRecord]:
        rows = self._all("step_transitions", {"workflow_step_uuid": step_uuid})
        return [self._transition(r) for r in rows]

    def table_counts(self) -> dict[str, int]:
        return {str(r["t"]): int(r["n"]) for r in self._all("table_counts")}

    # -- row mapping ----------------------------------------------------------------------

    def _transition(self, row: Any) -> TransitionRecord:
        return TransitionRecord(
            entity_uuid=str(row["entity_uuid"]),
            from_state=row["from_state"],
            to_state=row["to_state"],
            event=row["event"],
            sort_key=int(row["sort_key"]),
            most_recent=bool(row["most_recent"]),
            metadata=self._d.json_value(row["metadata"]) or {},
            created_at=self._required_ts(row["created_at"]),
        )

    def _required_ts(self, value: Any) -> datetime:
        ts = self._d.ts_value(value)
        if ts is None:
            raise ValueError("timestamp column is null")
        return ts

    def _task_record(self, row: Any) -> TaskRecord:
        d = self._d
        return TaskRecord(
            task_uuid=str(row["task_uuid"]),
            named_task_uuid=str(row["named_task_uuid"]),
            namespace=row["namespace"],
            name=row["name"],
            version=row["version"],
            state=TaskState(row["state"]),
            context=d.json_value(row["context"]),
            identity_hash=row["identity_hash"],
            initiator=row["initiator"],
            source_system=row["source_system"],
            reason=row["reason"],
            tags=d.json_value(row["tags"]) or [],
            priority=int(row["priority"]),
            correlation_id=str(row["correlation_id"]),
            parent_correlation_id=row["parent_correlation_id"],
            requested_at=self._required_ts(row["requested_at"]),
            created_at=self._required_ts(row["created_at"]),
            updated_at=self._required_ts(row["updated_at"]),
            complete=bool(row["complete"]),
            completed_at=d.ts_value(row["completed_at"]),
        )

    def _step_record(self, row: Any) -> StepRecord:
        d = self._d
        return StepRecord(
            workflow_step_uuid=str(row["workflow_step_uuid"]),
            task_uuid=str(row["task_uuid"]),
            name=row["name"],
            template_step_name=row["template_step_name"],
            state=StepState(row["state"]),
            retryable=bool(row["retryable"]),
            max_attempts=int(row["max_attempts"]),
            attempts=int(row["attempts"] or 0),
            in_process=bool(row["in_process"]),
            processed=bool(row["processed"]),
            processed_at=d.ts_value(row["processed_at"]),
            last_attempted_at=d.ts_value(row["last_attempted_at"]),
            backoff_request_seconds=row["backoff_request_seconds"],
            next_retry_at=d.ts_value(row["next_retry_at"]),
            inputs=d.json_value(row["inputs"]),
            results=d.json_value(row["results"]),
            checkpoint=d.json_value(row["checkpoint"]),
            created_at=self._required_ts(row["created_at"]),
            updated_at=self._required_ts(row["updated_at"]),
        )

    # -- operations: operator actions, DLQ, staleness, read models ------------------------
    # Queries in each backend's queries_operations.sql. Rows come back as plain dicts with
    # timestamps as aware datetimes, JSON parsed and flags as bools; orchestration shapes them.

    def task_last_event(self, task_uuid: str) -> str | None:
        """The event of the task's most recent transition (``None`` if it has none)."""
        row = self._one("task_last_event", {"task_uuid": task_uuid})
        return None if row is None else row["event"]

    def task_state_timing(self, task_uuid: str) -> tuple[TaskState, datetime, datetime] | None:
        """The task's state, when it entered it, and when the task was created."""
        row = self._one("task_state_timing", {"task_uuid": task_uuid})
        if row is None:
            return None
        return (
            TaskState(row["state"]),
            self._required_ts(row["state_entered_at"]),
            self._required_ts(row["created_at"]),
        )

    def stale_task_candidates(
        self,
        now: datetime,
        *,
        waiting_for_dependencies_minutes: float,
        waiting_for_retry_minutes: float,
        steps_in_process_minutes: float,
        max_lifetime_minutes: float,
        limit: int,
    ) -> list[str]:
        """Tasks past their threshold or lifetime without a pending DLQ entry, oldest first."""
        rows = self._all(
            "stale_task_candidates",
            {
                "now": self._ts(now),
                "waiting_for_dependencies_minutes": float(waiting_for_dependencies_minutes),
                "waiting_for_retry_minutes": float(waiting_for_retry_minutes),
                "steps_in_process_minutes": float(steps_in_process_minutes),
                "max_lifetime_minutes": float(max_lifetime_minutes),
                "limit": limit,
            },
        )
        return [str(r["task_uuid"]) for r in rows]

    def staleness_monitoring(
        self,
        now: datetime,
        *,
        waiting_for_dependencies_minutes: float,
        waiting_for_retry_minutes: float,
        steps_in_process_minutes: float,
        other_state_minutes: float,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Unfinished tasks with minutes in state, age and threshold, most overdue first."""
        rows = self._all(
            "staleness_monitoring",
            {
                "now": self._ts(now),
                "waiting_for_dependencies_minutes": float(waiting_for_dependencies_minutes),
                "waiting_for_retry_minutes": float(waiting_for_retry_minutes),
                "steps_in_process_minutes": float(steps_in_process_minutes),
                "other_state_minutes": float(other_state_minutes),
                "limit": limit,
            },
        )
        return [self._plain_row(r) for r in rows]

    def dlq_entries_page(
        self, *, resolution_status: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """DLQ entries, newest first, optionally of one resolution status."""
        rows = self._all(
            "dlq_entries_page",
            {"resolution_status": resolution_status, "limit": limit, "offset": offset},
        )
        return [self._dlq_row(r) for r in rows]

    def latest_dlq_entry(self, task_uuid: str) -> dict[str, Any] | None:
        """The task's most recent DLQ entry."""
        row = self._one("dlq_entry_latest_for_task", {"task_uuid": task_uuid})
        return None if row is None else self._dlq_row(row)

    def lock_dlq_entry(self, dlq_entry_uuid: str) -> dict[str, Any] | None:
        """A DLQ entry, locked until the transaction ends (PostgreSQL row lock)."""
        row = self._one("lock_dlq_entry", {"dlq_entry_uuid": dlq_entry_uuid})
        return None if row is None else self._dlq_row(row)

    def has_other_pending_dlq_entry(self, task_uuid: str, dlq_entry_uuid: str) -> bool:
        """Whether another entry of the task is pending (at most one may be, A13)."""
        row = self._one(
            "other_pending_dlq_entry", {"task_uuid": task_uuid, "dlq_entry_uuid": dlq_entry_uuid}
        )
        return row is not None

    def update_dlq_entry(
        self,
        dlq_entry_uuid: str,
        *,
        resolution_status: str,
        resolution_timestamp: datetime | None,
        resolution_notes: str | None,
        resolved_by: str | None,
        metadata: JSONObject,
        now: datetime,
    ) -> bool:
        """Overwrite an entry's resolution fields; ``False`` if it does not exist."""
        cur = self._run(
            "update_dlq_entry",
            {
                "dlq_entry_uuid": dlq_entry_uuid,
                "resolution_status": resolution_status,
                "resolution_timestamp": self._ts(resolution_timestamp),
                "resolution_notes": resolution_notes,
                "resolved_by": resolved_by,
                "metadata": self._json(metadata),
                "now": self._ts(now),
            },
        )
        return bool(cur.rowcount == 1)

    def dlq_stats(self) -> list[dict[str, Any]]:
        """Per DLQ reason: counts by resolution status, oldest/newest entry, resolution time."""
        rows = self._all("dlq_stats")
        return [self._plain_row(r, ts_columns=("oldest_entry", "newest_entry")) for r in rows]

    def dlq_investigation_queue(
        self, now: datetime, *, base_priorities: Mapping[str, float], limit: int
    ) -> list[dict[str, Any]]:
        """Pending entries by triage priority; ``base_priorities`` maps reasons (and "other")."""
        params: dict[str, Any] = {"now": self._ts(now), "limit": limit}
        for reason in (
            "dependency_cycle_detected",
            "max_retries_exceeded",
            "staleness_timeout",
            "worker_unavailable",
            "other",
        ):
            params[f"priority_{reason}"] = float(base_priorities[reason])
        rows = self._all("dlq_investigation_queue", params)
        return [self._plain_row(r, ts_columns=("dlq_timestamp",)) for r in rows]

    def task_page(
        self,
        filters: Mapping[str, str | None],
        *,
        now: datetime,
        limit: int,
        offset: int,
        task_uuid: str | None = None,
    ) -> list[tuple[TaskRecord, dict[str, int]]]:
        """Tasks newest first, each with its step counts by kind.

        ``filters`` holds namespace, name, status, initiator and source_system (``None`` or
        absent matches all).
        """
        params = self._task_filters(filters)
        params.update(
            {"task_uuid": task_uuid, "now": self._ts(now), "limit": limit, "offset": offset}
        )
        counts = (
            "total_steps",
            "pending_steps",
            "in_progress_steps",
            "satisfied_steps",
            "error_steps",
            "pipeline_steps",
            "retrying_steps",
            "ready_steps",
        )
        return [
            (self._task_record(r), {name: int(r[name] or 0) for name in counts})
            for r in self._all("task_page", params)
        ]

    def task_count(self, filters: Mapping[str, str | None]) -> int:
        """How many tasks match ``filters`` (see ``task_page``)."""
        row = self._one("task_count", self._task_filters(filters))
        return int(row["n"]) if row is not None else 0

    def task_state_totals(self) -> dict[str, int]:
        """Number of tasks per state (states without tasks are absent)."""
        return {str(r["state"]): int(r["n"]) for r in self._all("task_state_totals")}

    def step_readiness(
        self, task_uuid: str, step_uuid: str | None = None
    ) -> list[tuple[StepRecord, int, int, datetime | None]]:
        """A task's steps (or one) with total parents, satisfied parents and last failure time."""
        rows = self._all(
            "step_readiness", {"task_uuid": task_uuid, "workflow_step_uuid": step_uuid}
        )
        return [
            (
                self._step_record(r),
                int(r["total_parents"]),
                int(r["completed_parents"]),
                self._d.ts_value(r["last_failure_at"]),
            )
            for r in rows
        ]

    def step_audit(self, task_uuid: str, step_uuid: str) -> list[dict[str, Any]]:
        """The step's result audit rows joined with their transitions, oldest first."""
        rows = self._all("step_audit", {"task_uuid": task_uuid, "workflow_step_uuid": step_uuid})
        return [
            self._plain_row(
                r,
                ts_columns=("recorded_at",),
                json_columns=("transition_metadata",),
                flag_columns=("success",),
            )
            for r in rows
        ]

    @staticmethod
    def _task_filters(filters: Mapping[str, str | None]) -> dict[str, Any]:
        names = ("namespace", "name", "status", "initiator", "source_system")
        unknown = set(filters) - set(names)
        if unknown:
            raise ValueError(f"unknown task filters: {', '.join(sorted(unknown))}")
        return {name: filters.get(name) for name in names}

    def _dlq_row(self, row: Any) -> dict[str, Any]:
        return self._plain_row(
            row,
            ts_columns=("dlq_timestamp", "resolution_timestamp", "created_at", "updated_at"),
            json_columns=("task_snapshot", "metadata"),
        )

    def _plain_row(
        self,
        row: Any,
        *,
        ts_columns: Iterable[str] = (),
        json_columns: Iterable[str] = (),
        flag_columns: Iterable[str] = (),
    ) -> dict[str, Any]:
        """A result row as a dict; the named columns converted to datetime, JSON or bool."""
        out = dict(row)
        for name in ts_columns:
            out[name] = self._d.ts_value(out[name])
        for name in json_columns:
            out[name] = self._d.json_value(out[name])
        for name in flag_columns:
            out[name] = bool(out[name])
        return out

    # -- analytics (queries_operations.sql; tasker.orchestration.analytics defines them) ----

    def analytics_performance(self, since: datetime, now: datetime) -> dict[str, Any]:
        """Task counts and durations, and step execution counts and durations, of the tasks
        created in ``[since, now]``; averages are ``None`` when there is nothing to average."""
        row = self._one("analytics_performance", {"since": self._ts(since), "now": self._ts(now)})
        return self._plain_row(row)

    def analytics_slow_steps(self, *, limit: int, min_executions: int) -> list[dict[str, Any]]:
        """Worker results per template step, the slowest average first."""
        rows = self._all("analytics_slow_steps", {"limit": limit, "min_executions": min_executions})
        return [self._plain_row(r, ts_columns=("last_executed_at",)) for r in rows]

    def analytics_slow_tasks(self, *, limit: int, min_executions: int) -> list[dict[str, Any]]:
        """Finished tasks per template, the slowest average first."""
        rows = self._all("analytics_slow_tasks", {"limit": limit, "min_executions": min_executions})
        return [self._plain_row(r, ts_columns=("last_executed_at",)) for r in rows]
