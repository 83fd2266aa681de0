"""A PostgreSQL transaction: one pooled connection that holds back what nobody reads.

``HeldConnection`` sends the store's unread statements (``BEGIN``, inserts, a held task's state
change, the ``NOTIFY``) in one pipeline with the next statement that is read, or with
``COMMIT``; ``PostgresTransaction`` builds the worker's step transaction on it (ADR 0015) and
commits with a claim (ADR 0020). ``PostgresStore`` (``tasker.store.postgres``) opens them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from psycopg.rows import DictRow

from tasker.domain.model import JSONObject, StepRecord, Successors, TaskRecord
from tasker.domain.states import StepState, TaskState
from tasker.errors import PassMispredicted, StoreError, StoreUnavailable
from tasker.store.sql import (
    _STEPS_PER_INSERT,
    FencedResult,
    LockedTask,
    NewStep,
    NewTask,
    PredictedPass,
    SqlTransaction,
    StepOverview,
    StepTransition,
    _transition_metadata,
    enqueued_step_path,
    new_uuid,
)

__all__ = [
    "MISPREDICTED_SQLSTATE",
    "Conn",
    "HeldConnection",
    "HeldResult",
    "PostgresDialect",
    "PostgresTransaction",
    "store_error",
    "to_psycopg_placeholders",
]

# A string literal, a quoted identifier, a "::" cast, or a :name parameter (group 1).
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_][A-Za-z0-9_]*)")

Conn = psycopg.Connection[DictRow]

# What a claimer may still read once its transaction committed with the claim (each in a
# statement of its own): the rows of claimed steps' tasks it does not hold, their ancestors.
_READS_AFTER_COMMIT = (
    "get_tasks",
    "get_task",
    "get_step",
    "named_task_by_uuid",
    "ancestor_results",
    "ancestor_results_of",
)

# What check_predicted_passes fails with (tasker_mispredicted, migration 0014).
MISPREDICTED_SQLSTATE = "TK001"

# The timestamp columns of a task row that TaskRecord holds.
_TASK_TIMESTAMPS = ("requested_at", "created_at", "updated_at", "completed_at")

# Transaction states in which a COMMIT sent in a pipeline did not run (an earlier statement
# failed, and the server skipped everything after it).
_STILL_IN_TRANSACTION = frozenset(
    {psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR}
)


def to_psycopg_placeholders(sql: str) -> str:
    """Rewrite ``:name`` parameters as psycopg's ``%(name)s``, once, when queries are loaded.

    ``::type`` casts, string literals and quoted identifiers are left alone; a literal ``%``
    is doubled, as psycopg requires.
    """
    escaped = sql.replace("%", "%%")
    return _TOKEN.sub(lambda m: f"%({m.group(1)})s" if m.group(1) else m.group(0), escaped)


# json.dumps with non-default arguments builds a new JSONEncoder per call; a shared one
# (stateless, safe across threads) gives the same text for a fraction of the cost.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))


class PostgresDialect:
    """Values travel as native types; JSON goes as text and is cast ``::jsonb`` in the SQL.

    JSON is serialised here rather than by psycopg so that an unserialisable value fails the
    same way (``TypeError``, before any SQL) on both backends.
    """

    name = "postgres"

    def placeholder(self, name: str, kind: str) -> str:
        return f"%({name})s::jsonb" if kind == "json" else f"%({name})s"

    def marker(self, kind: str) -> str:
        return "%s::jsonb" if kind == "json" else "%s"

    def json_param(self, value: Any) -> Any:
        return _JSON_ENCODER.encode(value)

    def json_nested(self, value: Any) -> Any:
        return self.json_param(value)

    def json_value(self, value: Any) -> Any:
        return value  # psycopg has already parsed jsonb

    def ts_param(self, value: datetime | None) -> Any:
        return value

    def ts_value(self, value: Any) -> datetime | None:
        return None if value is None else cast(datetime, value).astimezone(UTC)

    def bool_param(self, value: bool) -> Any:
        return value

    def array_param(self, values: Sequence[str]) -> Any:
        return list(values)  # a text[]: the planner sees how many keys there are


class HeldConnection:
    """What ``SqlTransaction`` executes on: one pooled connection, holding back what can wait.

    The store's own statements whose results nobody reads (``BEGIN``, inserts, a held task's
    state change, the ``NOTIFY``) are held here and sent, in pipeline mode, together with the
    next statement whose result is needed (or with ``COMMIT``), so they cost no round trip of
    their own; a failure among them surfaces there, still inside the transaction, which is
    rolled back as before. Every other statement runs at once, as without holding, so that it
    has run (its locks are held, its errors raised) when ``execute`` returns.
    """

    def __init__(
        self,
        conn: Conn,
        where: str,
        deferrable: frozenset[str],
        deferrable_prefix: str,
        custom_planned: frozenset[str],
    ) -> None:
        self._conn = conn
        self._where = where
        self._deferrable = deferrable
        self._deferrable_prefix = deferrable_prefix
        self._custom_planned = custom_planned
        self._held: list[tuple[str, Any, HeldResult]] = []

    def execute(self, sql: str, params: Any = None, /) -> HeldResult:
        if sql in self._deferrable or sql.startswith(self._deferrable_prefix):
            result = HeldResult(self, None)
            self._held.append((sql, params, result))
            return result
        try:
            return HeldResult(self, self.run(sql, params))
        except psycopg.Error as exc:
            raise store_error(exc, self._where, "a statement failed") from exc

    def run(self, sql: str, params: Any = None) -> psycopg.Cursor[DictRow]:
        """Run ``sql`` after whatever is held, in one round trip; psycopg errors pass through
        (the caller classifies them)."""
        # A report is never prepared: planned for these values, whatever plan_cache_mode says.
        prepare = False if sql in self._custom_planned else None
        if not self._held:
            return self._conn.execute(sql, params, prepare=prepare)
        held, self._held = self._held, []
        with self._conn.pipeline():
            for held_sql, held_params, result in held:
                result.cursor = self._conn.execute(held_sql, held_params)
            cursor = self._conn.execute(sql, params, prepare=prepare)
        return cursor  # leaving the pipeline read every result and raised the first error

    def hold(self, sql: str, params: Any) -> HeldResult:
        """Hold ``sql`` until the next statement that is read (whatever its text); its result
        is there to read after that."""
        result = HeldResult(self, None)
        self._held.append((sql, params, result))
        return result

    def send_held(self) -> None:
        """Send what is held now (somebody asked for a held statement's result)."""
        if self._held:
            held, self._held = self._held, []
            try:
                with self._conn.pipeline():
                    for held_sql, held_params, result in held:
                        result.cursor = self._conn.execute(held_sql, held_params)
            except psycopg.Error as exc:
                raise store_error(exc, self._where, "a statement failed") from exc

    def drop_held(self) -> None:
        """Forget what is held (the transaction failed before it was sent)."""
        self._held.clear()

    def in_transaction(self) -> bool:
        """Still in the transaction: a statement sent with ``COMMIT`` failed, so the server
        skipped the ``COMMIT``."""
        return self._conn.pgconn.transaction_status in _STILL_IN_TRANSACTION


class HeldResult:
    """A statement's result; a held statement's is sent for when it is asked for."""

    __slots__ = ("_owner", "cursor")

    def __init__(self, owner: HeldConnection, cursor: psycopg.Cursor[DictRow] | None) -> None:
        self._owner = owner
        self.cursor = cursor

    def _ready(self) -> psycopg.Cursor[DictRow]:
        if self.cursor is None:
            self._owner.send_held()
        assert self.cursor is not None
        return self.cursor

    def fetchall(self) -> list[DictRow]:
        return self._ready().fetchall()

    @property
    def rowcount(self) -> int:
        return self._ready().rowcount


class PostgresTransaction(SqlTransaction):
    """``SqlTransaction`` that does not wait for task state changes it cannot lose.

    A task whose row this transaction locked (``lock_task``) cannot be moved by anybody else,
    so the compare-and-set of ``transition_task_path`` succeeds unless orchestration asked
    for a move from a state the task is not in, which it treats as a bug anyway (``move_task``
    raises). The ``UPDATE`` is therefore sent without waiting for its result (it travels with
    the next statement that is read: one round trip fewer per step), and the statement
    itself fails, failing the transaction, if it finds the task in another state. A task not
    locked here keeps the plain compare-and-set contract (``False`` when it was elsewhere).
    Steps read as ready under their task's lock are enqueued the same way.

    It also sends together what a worker's step transaction needs: a result group's task
    locks, stored results with their audit rows and the tasks' steps in one round trip
    (``lock_and_complete_fenced_steps``); the claim with its ancestor results and root
    steps' task rows in one statement (``claim_enqueued_steps``).
    """

    def __init__(self, *args: Any, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A read (``PostgresStore.read``): ``task_with_steps`` may end it with its COMMIT.
        self.read_only = read_only
        # Set by the store: queues the transaction's NOTIFYs and commits (``claim_...(commit)``).
        self.finish: Callable[[PostgresTransaction], None] | None = None
        # ``committed`` (SqlTransaction): only the reads the claimer makes next
        # (``_READS_AFTER_COMMIT``, each a statement of its own) may follow.
        self._locked_tasks: set[str] = set()
        # Ancestor results of the steps this transaction claimed, read with the claim, and
        # the rows (JSON text) of the tasks of the root steps among them: served as if read
        # right after the claim, so dropped at the transaction's next statement.
        self._claimed_ancestors: dict[str, dict[str, JSONObject]] = {}
        self._claimed_tasks: dict[str, str] = {}
        # Steps read as ready (step_overview) while this transaction held their task's lock,
        # with the state they were read in; nobody else can move them until it ends.
        self._ready_under_lock: dict[str, StepState] = {}

    def step_overview(
        self, task_uuid: str, now: datetime
    ) -> tuple[list[tuple[str, StepState]], dict[StepState, int]]:
        overview = super().step_overview(task_uuid, now)
        if task_uuid in self._locked_tasks:
            self._ready_under_lock.update(overview[0])
        return overview

    def step_overviews(
        self, task_uuids: Sequence[str], now: datetime
    ) -> dict[str, tuple[list[tuple[str, StepState]], dict[StepState, int]]]:
        overviews = super().step_overviews(task_uuids, now)
        for task_uuid, (ready, _) in overviews.items():
            if task_uuid in self._locked_tasks:
                self._ready_under_lock.update(ready)
        return overviews

    def lock_and_complete_fenced_steps(
        self,
        task_uuids: Sequence[str],
        results: Sequence[FencedResult],
        audits: Sequence[Mapping[str, Any]],
        from_state: StepState,
        via: tuple[StepState, str],
        to_state: StepState,
        event: str,
        now: datetime,
    ) -> tuple[dict[str, LockedTask], dict[str, str], dict[str, StepOverview]]:
        """One round trip: the tasks locked (``lock_tasks``), the results stored and audited
        (``complete_fenced_steps_audited``, one statement), and the ``step_overviews`` of
        all the tasks, read after both, in that order.

        The results are sent before their tasks are known to exist: a step exists only with
        its task, so a missing task's results find no row to store. An overview that turns
        out not to be needed (a result refused, a finished task) is a read thrown away.
        """
        keys = self._d.array_param(sorted(set(task_uuids)))
        self._stats.statements += 2  # the two held here; execute counts the third
        lock, fenced, _ = self._hold_lock_and_complete(
            keys, results, audits, from_state, via, to_state, event
        )
        read = self.execute(self._q["step_overviews"], {"task_uuids": keys, "now": now})
        overview_rows = read.fetchall()
        locked = {
            str(r["task_uuid"]): LockedTask(
                str(r["task_uuid"]),
                TaskState(r["state"]),
                r["namespace"],
                str(r["named_task_uuid"]),
            )
            for r in lock.fetchall()
        }
        self._locked_tasks.update(locked)
        moved = {str(r["workflow_step_uuid"]): str(r["via_uuid"]) for r in fenced.fetchall()}
        overviews: dict[str, StepOverview] = {task_uuid: ([], {}) for task_uuid in locked}
        self._add_overview_rows(
            overviews, (r for r in overview_rows if str(r["task_uuid"]) in locked)
        )
        for ready, _ in overviews.values():
            self._ready_under_lock.update(ready)
        return locked, moved, overviews

    def _hold_lock_and_complete(
        self,
        keys: Any,
        results: Sequence[FencedResult],
        audits: Sequence[Mapping[str, Any]],
        from_state: StepState,
        via: tuple[StepState, str],
        to_state: StepState,
        event: str,
    ) -> tuple[HeldResult, HeldResult, dict[str, str]]:
        """Hold ``lock_tasks`` of ``keys`` and ``complete_fenced_steps_audited`` of the
        results; returns their results and each step's last transition uuid."""
        rows, moved_via = self._fenced_rows(results, from_state, via, to_state, event)
        for row, audit in zip(rows, audits, strict=True):
            row["task_uuid"] = audit["task_uuid"]
            row["via_uuid"] = moved_via[row["step_uuid"]]
            row["audit_uuid"] = new_uuid()
            row["worker_uuid"] = audit["worker_uuid"]
            row["correlation_id"] = audit["correlation_id"]
            row["execution_time_ms"] = audit["execution_time_ms"]
            row["attempt"] = audit["attempt"]
        lock = self.connection.hold(self._q["lock_tasks"], {"task_uuids": keys})
        fenced = self.connection.hold(
            self._q["complete_fenced_steps_audited"],
            {
                "results": self._json(rows),
                "keys": self._d.array_param([r.step_uuid for r in results]),
                "to_state": to_state.value,
                "event": event,
            },
        )
        return lock, fenced, {row["step_uuid"]: row["transition_uuid"] for row in rows}

    predicts_passes = True

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
        """Sends nothing: the tasks' locks, the results and the premises' check
        (``check_predicted_passes``) are held, to travel with the pass's writes, the claim
        and ``COMMIT`` in one round trip. What the pass decides is written as under any lock
        held here (``enqueue_held_steps``, ``bump_held_tasks``): the check fails the
        transaction before them if a premise does not hold."""
        keys = self._d.array_param(sorted({p.task.task_uuid for p in passes}))
        self._stats.statements += 3
        _, _, last = self._hold_lock_and_complete(
            keys, results, audits, from_state, via, to_state, event
        )
        checks = [
            {
                "task_uuid": p.task.task_uuid,
                "step_uuid": p.step_uuid,
                "transition_uuid": last.get(p.step_uuid),
                "ready": list(p.ready),
                "last": p.last,
            }
            for p in passes
        ]
        self.connection.hold(
            self._q["check_predicted_passes"], {"passes": self._json(checks), "now": now}
        )
        for p in passes:
            self._locked_tasks.add(p.task.task_uuid)
            self._ready_under_lock.update((step_uuid, StepState.PENDING) for step_uuid in p.ready)
        return {p.task.task_uuid: p.task for p in passes}

    def transition_step(self, step_uuid: str, *args: Any, **kwargs: Any) -> StepTransition | None:
        self._ready_under_lock.pop(step_uuid, None)
        return super().transition_step(step_uuid, *args, **kwargs)

    def enqueue_steps(
        self,
        steps: Sequence[tuple[str, StepState]],
        to_state: StepState,
        event: str,
        now: datetime,
        *,
        through: Mapping[StepState, tuple[StepState, str]] | None = None,
    ) -> set[str]:
        """Steps read as ready under their task's lock (the usual case: a pass enqueues what
        its ``step_overview`` found) cannot lose the compare-and-set, so their ``UPDATE`` is
        sent without waiting (``enqueue_held_steps``, which fails the transaction if a step
        was in another state after all) and they are all reported moved."""
        ready = self._ready_under_lock
        if not steps or any(ready.get(step_uuid) is not state for step_uuid, state in steps):
            for step_uuid, _ in steps:  # moved or not, what was read of them is stale now
                ready.pop(step_uuid, None)
            return super().enqueue_steps(steps, to_state, event, now, through=through)
        params = self._enqueue_params(steps, to_state, event, now, through)
        params["expected"] = len(steps)
        self._run("enqueue_held_steps", params)
        for step_uuid, _ in steps:
            ready.pop(step_uuid, None)
        return {step_uuid for step_uuid, _ in steps}

    @property
    def connection(self) -> HeldConnection:
        return cast(HeldConnection, self._conn)

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> Any:
        if self.committed and sql not in {self._q[name] for name in _READS_AFTER_COMMIT}:
            raise StoreError(
                "a statement after the transaction committed (with its claim, or a read with"
                " its first statements)"
            )
        if self._claimed_ancestors or self._claimed_tasks:
            self._claimed_ancestors.clear()
            self._claimed_tasks.clear()
        return super().execute(sql, params)

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
        commit: bool = False,
    ) -> list[tuple[StepRecord, str]]:
        """The candidates and their claim in one statement (``claim_steps_any`` /
        ``claim_steps_in``), which also reads each claimed step's ancestor results: the
        handler context's ``ancestor_results`` then needs no statement of its own. With
        ``commit``, the claim travels with the transaction's ``NOTIFY`` and ``COMMIT`` (ADR
        0020): one round trip for the claim and the commit."""
        params: dict[str, Any] = {
            "limit": limit,
            "tokens": [new_uuid() for _ in range(limit)],
            "transition_uuids": [new_uuid() for _ in range(limit)],
            "now": now,
            "event": event,
            "metadata": self._json(_transition_metadata(event, now, metadata)),
            "worker_id": worker_id,
            "lease_expires_at": lease_expires_at,
        }
        if namespaces:
            params["namespaces"] = json.dumps(list(namespaces))
        name = "claim_steps_in" if namespaces else "claim_steps_any"
        if commit and self.finish is not None:
            self._stats.statements += 1
            held = self.connection.hold(self._q[name], params)
            self.finish(self)
            rows = held.fetchall()
        else:
            rows = self._all(name, params)
        claimed: list[tuple[StepRecord, str]] = []
        for row in rows:
            record = self._step_record(row)
            self._claimed_ancestors[record.workflow_step_uuid] = {
                str(name): results for name, results in row["ancestor_results"] or ()
            }
            if row["root_task_row"] is not None:
                self._claimed_tasks[record.task_uuid] = row["root_task_row"]
            self.claimed_successors[record.workflow_step_uuid] = Successors(
                row["namespace"],
                str(row["named_task_uuid"]),
                tuple((str(uuid), int(parents)) for uuid, parents in row["children"] or ()),
                bool(row["last"]),
            )
            claimed.append((record, str(row["claim_token"])))
        return claimed

    def insert_tasks(
        self,
        tasks: Sequence[NewTask],
        now: datetime,
        metadata: JSONObject | None = None,
        *,
        expect_all: bool = False,
    ) -> set[str]:
        """With ``expect_all``, the inserts are held with ``check_tasks_inserted`` after them,
        so that creating a task is one round trip with the steps, edges and ``COMMIT``."""
        if not expect_all:
            return super().insert_tasks(tasks, now, metadata)
        for sql, params, chunk, states in self._task_inserts(tasks, now, metadata):
            self._stats.statements += 1
            self.connection.hold(sql, params)
            for task, state in zip(chunk, states, strict=True):
                self._task_moved(str(task.values["task_uuid"]), state, True)
        uuids = [str(task.values["task_uuid"]) for task in tasks]
        self._stats.statements += 1
        self.connection.hold(
            self._q["check_tasks_inserted"],
            {"task_uuids": self._d.array_param(uuids), "expected": len(uuids)},
        )
        return set(uuids)

    def insert_task_steps(
        self, tasks: Sequence[tuple[str, str, int, Sequence[NewStep]]], now: datetime
    ) -> None:
        """The steps as ``insert_steps_unnest``: one column per array parameter, one
        statement text whatever the number of steps (converted once, prepared)."""
        rows = [
            (task_uuid, namespace, priority, step)
            for task_uuid, namespace, priority, steps in tasks
            for step in steps
        ]
        initial = _transition_metadata("initial", now, None)
        enqueue = _transition_metadata("enqueue", now, None)
        for start in range(0, len(rows), _STEPS_PER_INSERT):
            chunk = rows[start : start + _STEPS_PER_INSERT]
            transitions: list[str] = []
            paths: list[str | None] = []
            for _, _, _, step in chunk:
                first = new_uuid()
                if not step.enqueue:
                    transitions.append(first)
                    paths.append(None)
                    continue
                second = new_uuid()
                transitions.append(second)
                paths.append(self._json(enqueued_step_path(first, second, initial, enqueue)))
            self._run(
                "insert_steps_unnest",
                {
                    "step_uuids": [step.workflow_step_uuid for _, _, _, step in chunk],
                    "task_uuids": [task_uuid for task_uuid, _, _, _ in chunk],
                    "names": [step.name for _, _, _, step in chunk],
                    "template_names": [step.template_step_name for _, _, _, step in chunk],
                    "namespaces": [namespace for _, namespace, _, _ in chunk],
                    "retryable": [step.retryable for _, _, _, step in chunk],
                    "max_attempts": [step.max_attempts for _, _, _, step in chunk],
                    "inputs": [step.inputs for _, _, _, step in chunk],
                    "priorities": [priority for _, _, priority, _ in chunk],
                    "enqueue": [step.enqueue for _, _, _, step in chunk],
                    "transition_uuids": transitions,
                    "paths": paths,
                    "now": self._ts(now),
                    "initial_metadata": self._json(initial),
                    "enqueue_metadata": self._json(enqueue),
                },
            )

    def task_with_steps(
        self, task_uuid: str, states: Collection[TaskState] | None = None
    ) -> tuple[TaskRecord | None, list[StepRecord]]:
        """Both reads in one round trip. As the first statements of a read, also its
        ``COMMIT``: a caller's view of a task (``Tasker.wait``, ``get_task``) costs one
        round trip instead of three; the read is then over (``committed``)."""
        if self.committed:
            return super().task_with_steps(task_uuid, states)
        conn = self.connection
        self._stats.statements += 2
        task = conn.hold(self._q["get_task"], {"task_uuid": task_uuid})
        if states is None:
            steps = conn.hold(self._q["task_steps"], {"task_uuid": task_uuid})
        else:
            steps = conn.hold(
                self._q["task_steps_in_states"],
                {
                    "task_uuid": task_uuid,
                    "states": self._d.array_param(sorted(state.value for state in states)),
                },
            )
        ends = self.read_only and not conn.in_transaction()
        if ends:
            conn.hold("COMMIT", None)
        conn.send_held()
        if ends:
            self.committed = True
            self._stats.read_commits += 1
        task_rows = task.fetchall()
        if not task_rows:
            return None, []
        return self._task_record(task_rows[0]), [self._step_record(r) for r in steps.fetchall()]

    def get_tasks(self, task_uuids: Iterable[str]) -> dict[str, TaskRecord]:
        wanted = list(task_uuids)
        rows = {u: self._claimed_tasks.pop(u) for u in wanted if u in self._claimed_tasks}
        # Reading task rows changes no step: the claim's ancestor results stay good.
        ancestors, self._claimed_ancestors = self._claimed_ancestors, {}
        try:
            found = super().get_tasks([u for u in wanted if u not in rows])
        finally:
            self._claimed_ancestors = ancestors
        found.update((task_uuid, self._task_from_json(row)) for task_uuid, row in rows.items())
        return found

    def _task_from_json(self, text: str) -> TaskRecord:
        """A task row read as ``to_jsonb(t)::text``: its timestamps are ISO 8601 text."""
        row = json.loads(text)
        for column in _TASK_TIMESTAMPS:
            if row[column] is not None:
                row[column] = datetime.fromisoformat(row[column])
        return self._task_record(row)

    def ancestor_results(self, step_uuid: str) -> dict[str, JSONObject]:
        found = self._claimed_ancestors.pop(step_uuid, None)
        return super().ancestor_results(step_uuid) if found is None else found

    def ancestor_results_of(self, step_uuids: Sequence[str]) -> dict[str, dict[str, JSONObject]]:
        if all(step_uuid in self._claimed_ancestors for step_uuid in step_uuids):
            return {step_uuid: self._claimed_ancestors.pop(step_uuid) for step_uuid in step_uuids}
        return super().ancestor_results_of(step_uuids)

    def lock_task(self, task_uuid: str) -> LockedTask | None:
        locked = super().lock_task(task_uuid)
        if locked is not None:
            self._locked_tasks.add(task_uuid)
        return locked

    def lock_tasks(self, task_uuids: Iterable[str]) -> dict[str, LockedTask]:
        locked = super().lock_tasks(task_uuids)
        self._locked_tasks.update(locked)
        return locked

    def transition_task_path(
        self,
        task_uuid: str,
        from_state: TaskState,
        path: Sequence[tuple[TaskState, str, JSONObject | None]],
        now: datetime,
    ) -> bool:
        if task_uuid not in self._locked_tasks:
            return super().transition_task_path(task_uuid, from_state, path, now)
        self._run("bump_held_task", self._task_path_params(task_uuid, from_state, path, now))
        return self._task_moved(task_uuid, path[-1][0], True)

    def transition_task_paths(
        self,
        paths: Sequence[tuple[str, TaskState, Sequence[tuple[TaskState, str, JSONObject | None]]]],
        now: datetime,
    ) -> bool:
        if len(paths) < 2 or any(task_uuid not in self._locked_tasks for task_uuid, _, _ in paths):
            return super().transition_task_paths(paths, now)
        params = {
            "paths": self._json(self._task_paths_rows(paths, now)),
            "keys": [task_uuid for task_uuid, _, _ in paths],
            "now": self._ts(now),
            "processor_uuid": self.processor_uuid,
            "expected": len(paths),
        }
        self._run("bump_held_tasks", params)
        for task_uuid, _, path in paths:
            self._task_moved(task_uuid, path[-1][0], True)
        return True


def store_error(exc: psycopg.Error, where: str, doing: str) -> StoreError:
    """Our exception for a driver error: ``StoreUnavailable`` when retrying may succeed.

    Operational errors cover lost connections, server shutdown, pool timeouts, statement and
    lock timeouts, serialization failures and deadlocks; interface errors a closed connection.
    """
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = f" [{exc.sqlstate}]" if exc.sqlstate else ""
    if exc.sqlstate == MISPREDICTED_SQLSTATE:
        return PassMispredicted(f"PostgreSQL at {where}: {detail}; the transaction was rolled back")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(
            f"PostgreSQL at {where}: {doing}: {detail}{code}; the transaction was rolled back,"
            " retry it"
        )
    return StoreError(f"PostgreSQL at {where}: {doing}: {detail}{code}")
