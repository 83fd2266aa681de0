"""PostgreSQL store: a psycopg connection pool, row locks for claims, LISTEN/NOTIFY wake-ups.

Every transaction borrows one pooled connection for its whole length, so each thread of a
runtime works on its own connection. Concurrency rests on PostgreSQL row locks (ADR 0201):
``lock_task`` is ``SELECT ... FOR UPDATE`` on the task row, so passes over one task are
serialised across processes; the claim queries (``claim_steps_*``, ``claim_candidates_*``) are
``FOR UPDATE SKIP LOCKED``, so concurrent claimers take disjoint steps without waiting on each
other.

Errors: psycopg exceptions never leave this package. Connection loss, pool exhaustion, timeouts,
serialization failures and deadlocks become ``StoreUnavailable`` (retryable: the transaction was
rolled back and the caller may run the whole block again); anything else becomes ``StoreError``.
The store does not retry by itself: the caller's code runs inside the transaction, and only the
caller can run it again.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from tasker.errors import ConfigError, MigrationRequired, StoreError
from tasker.store.migrate import discover_migrations
from tasker.store.postgres.transaction import (
    Conn,
    HeldConnection,
    PostgresDialect,
    PostgresTransaction,
    store_error,
    to_psycopg_placeholders,
)
from tasker.store.queries import load_queries, load_query_files
from tasker.store.sql import SqlTransaction, StoreStats, new_uuid

__all__ = ["PostgresDialect", "PostgresStore", "to_psycopg_placeholders"]

log = logging.getLogger("tasker.store.postgres")

_HERE = Path(__file__).parent
_CHANNEL = "tasker_work"
_SETTLED_CHANNEL = "tasker_settled"
# How many poll intervals a waiting thread that is not the polling one waits (see wait_for_work).
_QUIET_WAIT_POLLS = 10
_SETTLED_PER_NOTIFY = 200  # uuids per payload: PostgreSQL caps a payload at 8000 bytes
# Key of the advisory lock that serialises migrations across processes ("tasker" in ASCII).
_MIGRATION_LOCK_KEY = 0x7461736B6572


# One NOTIFY per channel and payload, all in one statement (delivered to listeners at commit).
_NOTIFY_SQL = (
    "SELECT pg_notify(c, p) FROM unnest(%(channels)s::text[], %(payloads)s::text[]) AS n(c, p)"
)
# The work NOTIFY of a transaction that commits with its claim (``claim_enqueued_steps`` with
# ``commit``): how many of the steps it enqueued are still enqueued is counted after the claim,
# in the same round trip, and nothing is sent when it claimed them all.
_NOTIFY_UNCLAIMED_SQL = (
    "SELECT pg_notify(%(channel)s, %(sender)s || '|' || n || '|' || %(namespaces)s)"
    " FROM (SELECT count(*) AS n FROM workflow_steps"
    " WHERE workflow_step_uuid = ANY (%(steps)s::text[]) AND state = 'enqueued') AS c"
    " WHERE n > 0"
)
_BEGIN = "BEGIN"
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# The store's statements whose results are never read: sent without waiting (see HeldConnection).
_DEFERRABLE_QUERIES = (
    "insert_step",
    "insert_steps_unnest",
    "insert_edge",
    "insert_edges",
    "insert_task_edges",
    "insert_result_audit",
    "insert_result_audits",
    "bump_held_task",
    "bump_held_tasks",
    "enqueue_held_steps",
)

# Queries planned for their parameters at every run, never prepared: the operator and API reports,
# whose optional filters ("CAST(:x AS text) IS NULL OR ...") and time windows only a plan for the
# actual values handles well. Every other statement runs on a generic plan (ADR 0018).
_CUSTOM_PLANNED_FILE = "queries_operations.sql"


class _RecentFirstPool(ConnectionPool[Conn]):
    """A pool that lends the most recently returned connection first.

    psycopg_pool lends the longest-idle connection, so a handful of threads rotate through
    every connection of the pool, and each connection plans (and parses, until psycopg
    prepares it) every statement anew for its first executions and builds its own catalog
    and trigger-function caches. Lending the warmest connection keeps that work on the few
    connections the load needs; the idle ones stay at the cold end, where the pool closes
    them first. Only the order of the idle connections changes (and only if the pool keeps
    them in a deque, as psycopg_pool 3.2 and 3.3 do).
    """

    def _get_ready_connection(self, timeout: float | None) -> Conn | None:
        idle = getattr(self, "_pool", None)
        if isinstance(idle, deque) and len(idle) > 1:
            idle.rotate(1)  # the most recently returned one (right end) goes first
        return super()._get_ready_connection(timeout)


def _where(params: Mapping[str, Any]) -> str:
    """host:port/dbname for messages (never the password)."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


class PostgresStore:
    """The scaled-out backend: any number of processes on one PostgreSQL database.

    Args:
        url: a ``postgresql://`` URL (or libpq key=value string); its parameters win over the
            defaults below.
        migrate: apply pending migrations on open (else refuse an outdated schema).
        max_connections: pool size; about twice the worker threads that share this store.
        connect_timeout_s: libpq connect timeout (R3.2).
        statement_timeout_s: server-side limit per statement (R3.2).
        lock_timeout_s: longest wait for a row lock, e.g. a task another process holds (R3.2).
        idle_in_transaction_timeout_s: the server ends a session that sits in a transaction
            this long (a paused process must not hold a task lock forever).
        pool_timeout_s: longest wait for a free pooled connection.
    """

    backend = "postgres"

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        max_connections: int = 10,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 30.0,
        lock_timeout_s: float = 10.0,
        idle_in_transaction_timeout_s: float = 60.0,
        pool_timeout_s: float = 30.0,
    ) -> None:
        try:
            params: dict[str, Any] = dict(conninfo_to_dict(url))
        except psycopg.Error as exc:
            raise ConfigError(f"invalid PostgreSQL URL: {exc}") from exc
        self.url = url
        self._where = _where(params)
        self._conninfo = make_conninfo(
            "",
            **_with_defaults(
                params,
                connect_timeout_s=connect_timeout_s,
                statement_timeout_s=statement_timeout_s,
                lock_timeout_s=lock_timeout_s,
                idle_in_transaction_timeout_s=idle_in_transaction_timeout_s,
            ),
        )
        self._queries = {
            name: to_psycopg_placeholders(sql) for name, sql in load_query_files(_HERE).items()
        }
        self._queries["claim_steps_in"] = _in_namespaces(self._queries["claim_steps_any"])
        self._deferrable = frozenset(
            {
                _BEGIN,
                _BEGIN_READ,
                _NOTIFY_SQL,
                _NOTIFY_UNCLAIMED_SQL,
                *(self._queries[n] for n in _DEFERRABLE_QUERIES),
            }
        )
        self._custom_planned = frozenset(
            to_psycopg_placeholders(sql)
            for sql in load_queries(_HERE / _CUSTOM_PLANNED_FILE).values()
        )
        # insert_steps has one VALUES row per step (tasker.store.sql): held whatever its rows.
        self._deferrable_prefix = self._queries["insert_steps"].partition("/* rows */")[0]
        self._dialect = PostgresDialect()
        self.stats = StoreStats()
        self.processor_uuid = new_uuid()
        self._work = threading.Condition()
        self._work_seq = 0
        # While the LISTEN connection is up, notifications are not lost: one waiting thread
        # polls as a fallback (``_polling``), the others wait for a notification.
        self._listening = False
        self._polling = False
        self._closed = False
        self._stopping = threading.Event()
        self._listener: threading.Thread | None = None
        self._listener_lock = threading.Lock()
        self._settled_callbacks: list[Callable[[Iterable[str]], None]] = []
        # close() notifies this channel, private to this store, to end the listener at once.
        self._stop_channel = f"tasker_stop_{uuid.uuid4().hex}"
        if migrate:
            self.migrate()
        else:
            self._check_schema()
        self._pool: ConnectionPool[Conn] = _RecentFirstPool(
            self._conninfo,
            connection_class=psycopg.Connection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=max_connections,
            timeout=pool_timeout_s,
            name="tasker",
            open=True,
        )

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _direct(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A connection outside the pool (migrations, schema checks): precise connect errors."""
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise store_error(exc, self._where, "cannot connect") from exc
        try:
            yield conn
        except psycopg.Error as exc:
            raise store_error(exc, self._where, "schema check or migration failed") from exc
        finally:
            conn.close()

    def _getconn(self) -> Conn:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            return self._pool.getconn()
        except psycopg.Error as exc:
            raise store_error(exc, self._where, "no database connection") from exc

    def _putconn(self, conn: Conn) -> None:
        """Return a connection; after a lost one, test the idle ones so the next caller doesn't
        inherit a dead socket (a restarted server leaves every pooled connection dead)."""
        lost = conn.broken or conn.closed
        self._pool.putconn(conn)
        if lost and not self._closed:
            self._pool.check()

    def pool_utilization(self) -> float:
        """The share of the pool's connections lent out right now (0..1; analytics)."""
        stats = self._pool.get_stats()
        in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
        return max(0.0, min(1.0, in_use / max(1, self._pool.max_size)))

    def _end(self, conn: Conn, statement: LiteralString) -> bool:
        """End a read, or ROLLBACK after a failure; never masks the exception that is already
        on its way. Returns whether there was a transaction to end.

        Nothing to do when the transaction never started (its ``BEGIN`` was still held).

        ``ROLLBACK`` goes through ``Connection.rollback``, which also makes psycopg forget
        the statements it prepared (and the server deallocate them): a statement that reached
        psycopg's prepare threshold inside a pipeline that failed before it counts as prepared
        on the client but was never parsed, and would fail later with "prepared statement
        does not exist" (psycopg 3.3 forgets them on ``ROLLBACK`` only the first time it sees
        one)."""
        if conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return False
        try:
            if statement == "ROLLBACK":
                conn.rollback()
            else:
                conn.execute(statement)
        except psycopg.Error as exc:
            log.debug("%s on %s failed (connection is discarded): %s", statement, self._where, exc)
        return True

    def close(self) -> None:
        """Close the pool and the LISTEN connection; wake anyone waiting for work."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        listener = self._listener
        if listener is not None:
            self._wake_listener()
        self._pool.close()
        if listener is not None:
            listener.join(5.0)
        with self._work:
            self._work.notify_all()

    # -- schema ---------------------------------------------------------------------------

    @staticmethod
    def _schema_version(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    def _check_schema(self) -> None:
        latest = len(discover_migrations(_HERE / "migrations"))
        with self._direct() as conn:
            current = self._schema_version(conn)
        if current < latest:
            raise MigrationRequired(
                f"PostgreSQL database {self._where} has schema version {current}, this tasker"
                f" needs {latest}: run `tasker migrate` (or open the store with migrate=True)"
            )

    def migrate(self) -> int:
        """Apply pending migrations in one transaction; returns how many ran.

        Many processes may start at once: an advisory transaction lock lets one migrate while
        the others wait, then find nothing left to do.
        """
        applied = 0
        with self._direct() as conn, conn.transaction():
            # DDL may wait on locks and run long; the short per-statement limits don't apply.
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = '5min'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK_KEY])
            current = self._schema_version(conn)
            for migration in discover_migrations(_HERE / "migrations"):
                if migration.version <= current:
                    continue
                # No parameters: psycopg sends the file as one multi-statement script.
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)"
                    " VALUES (%s, %s, now())",
                    [migration.version, migration.name],
                )
                applied += 1
        return applied

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """A read-committed write transaction on one pooled connection.

        Commits on success, rolls back on any exception. When steps were enqueued and not all
        claimed in the same transaction, a ``NOTIFY`` is sent inside the transaction (delivered
        to every listener at commit) and as many of this process's idle workers as there are
        unclaimed new steps are woken after it; the ``NOTIFY`` names this store, so its own
        listener ignores it.

        Raises:
            StoreUnavailable: connection lost, timeout, deadlock or serialization failure; the
                transaction was rolled back and may be run again.
            StoreError: any other database error.
        """
        conn = self._getconn()
        try:
            wrapped, tx = self._begin(conn, _BEGIN)
            tx.finish = self._finish_with_claim
            try:
                yield tx
                if not tx.committed:
                    self._announce(tx, tx.wake_count())
                    self._commit(wrapped)
            except BaseException:
                wrapped.drop_held()
                self._end(conn, "ROLLBACK")
                raise
        finally:
            self._putconn(conn)
        wake = tx.wake_count()  # after a claim that committed with it, counts what it took
        if wake != 0:
            self._wake_local(wake)

    def _commit(self, wrapped: HeldConnection) -> None:
        """``COMMIT``, with the ``NOTIFY`` and anything else held."""
        try:
            wrapped.run("COMMIT")
            self.stats.commits += 1
        except psycopg.Error as exc:
            if wrapped.in_transaction():
                # A statement sent with COMMIT failed, so COMMIT never ran (the caller rolls
                # back).
                raise store_error(exc, self._where, "a statement failed") from exc
            raise store_error(exc, self._where, "commit failed (the outcome is unknown)") from exc

    def _finish_with_claim(self, tx: PostgresTransaction) -> None:
        """Commit ``tx`` together with its claim, which is held: the work ``NOTIFY`` counts the
        steps the transaction enqueued and did not claim after the claim, in SQL."""
        if tx.wake_namespaces and tx.enqueued_step_uuids:
            tx.execute(
                _NOTIFY_UNCLAIMED_SQL,
                {
                    "channel": _CHANNEL,
                    "sender": self.processor_uuid,
                    "namespaces": ",".join(sorted(tx.wake_namespaces)),
                    "steps": sorted(tx.enqueued_step_uuids),
                },
            )
            self._announce(tx, 0)  # the settled tasks' NOTIFYs
        else:
            self._announce(tx, tx.wake_count())
        self._commit(tx.connection)
        tx.committed = True

    def _announce(self, tx: SqlTransaction, wake: int | None) -> None:
        """Queue the transaction's ``NOTIFY``s (work for others, settled tasks): one statement
        for all of them, delivered to listeners at commit."""
        notices: list[tuple[str, str]] = []
        if wake != 0:
            payload = "|".join(
                (
                    self.processor_uuid,
                    "*" if wake is None else str(wake),
                    ",".join(sorted(tx.wake_namespaces)),
                )
            )
            notices.append((_CHANNEL, payload))
        settled = sorted(tx.settled_tasks)
        for start in range(0, len(settled), _SETTLED_PER_NOTIFY):
            chunk = settled[start : start + _SETTLED_PER_NOTIFY]
            notices.append((_SETTLED_CHANNEL, f"{self.processor_uuid}|{','.join(chunk)}"))
        if notices:
            tx.execute(
                _NOTIFY_SQL,
                {
                    "channels": [c for c, _ in notices],
                    "payloads": [p for _, p in notices],
                },
            )

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        """A read-only snapshot: every statement sees the same committed state."""
        conn = self._getconn()
        try:
            wrapped, tx = self._begin(conn, _BEGIN_READ)
            try:
                yield tx
            except BaseException:
                wrapped.drop_held()
                self._end(conn, "ROLLBACK")
                raise
            wrapped.drop_held()
            # COMMIT, not ROLLBACK: the same for a read-only transaction, but psycopg forgets
            # every statement it prepared on a connection that runs ROLLBACK (ADR 0022).
            if self._end(conn, "COMMIT"):
                self.stats.read_commits += 1
        finally:
            self._putconn(conn)

    def _begin(self, conn: Conn, statement: str) -> tuple[HeldConnection, PostgresTransaction]:
        """Start a transaction (not counted as a statement, like SQLite's BEGIN); ``BEGIN`` is
        held and sent with the first statement."""
        wrapped = HeldConnection(
            conn, self._where, self._deferrable, self._deferrable_prefix, self._custom_planned
        )
        wrapped.execute(statement)
        tx = PostgresTransaction(
            wrapped,
            self._queries,
            self._dialect,
            self.stats,
            self.processor_uuid,
            read_only=statement == _BEGIN_READ,
        )
        return wrapped, tx

    # -- wake-ups -------------------------------------------------------------------------

    def _wake_local(self, count: int | None = None) -> None:
        """Announce work; wake ``count`` idle workers (``None``: all). A busy worker sees the
        new sequence number before it next sleeps, so waking fewer loses no work."""
        with self._work:
            self._work_seq += 1
            if count is None:
                self._work.notify_all()
            else:
                self._work.notify(count)

    def on_settled(self, callback: Callable[[Iterable[str]], None]) -> None:
        """Call ``callback`` with the tasks other processes settle (from the LISTEN thread)."""
        self._settled_callbacks.append(callback)
        self._ensure_listener()

    def hears_settles(self) -> bool:
        return self._listening and bool(self._settled_callbacks)

    def _on_settled_notify(self, payload: str) -> None:
        sender, _, uuids = payload.partition("|")
        if sender == self.processor_uuid or not uuids:
            return  # this process woke its own waiters after its commit
        task_uuids = uuids.split(",")
        for callback in list(self._settled_callbacks):
            try:
                callback(task_uuids)
            except Exception:
                log.exception("a settled-task callback failed")

    def _on_notify(self, payload: str) -> None:
        """A ``NOTIFY`` arrived: ``sender|count|namespaces`` from a transaction (ignored when
        this store sent it: it woke its workers itself), or empty from ``notify_work``."""
        sender, _, rest = payload.partition("|")
        if sender == self.processor_uuid:
            return
        count = rest.partition("|")[0]
        self._wake_local(int(count) if count.isdigit() else None)

    def notify_work(self) -> None:
        """Wake idle workers here now, and in other processes through ``NOTIFY``.

        Best effort beyond this process: if no connection is free within a moment, the others
        find the work at their next poll, which is the fallback anyway.
        """
        self._wake_local()
        if self._closed:
            return
        try:
            conn = self._pool.getconn(timeout=0.5)
        except psycopg.Error as exc:
            log.info("work not announced to other processes (%s); they will poll", exc)
            return
        try:
            conn.execute("SELECT pg_notify(%s, '')", [_CHANNEL])
        except psycopg.Error as exc:
            log.info("work not announced to other processes (%s); they will poll", exc)
        finally:
            self._putconn(conn)

    def work_sequence(self) -> int:
        return self._work_seq

    def wait_for_work(self, seen: int, timeout_s: float) -> int:
        """Block until work is announced after ``seen`` (by any process) or the timeout passes.

        The first call starts the LISTEN thread; the timeout is the polling fallback for
        notifications lost while it reconnects. While it is listening, only one waiting
        thread of this store polls; the others wait up to ``_QUIET_WAIT_POLLS`` timeouts for
        a notification (every thread of every process polling made most of the empty claims
        of an idle system). Losing the connection wakes them all.
        """
        self._ensure_listener()
        with self._work:
            if self._work_seq == seen and not self._closed:
                if self._listening and self._polling:
                    self._work.wait(timeout_s * _QUIET_WAIT_POLLS)
                else:
                    self._polling = True
                    try:
                        self._work.wait(timeout_s)
                    finally:
                        self._polling = False
            return self._work_seq

    def _wake_listener(self) -> None:
        """Interrupt the listener's wait so that closing does not wait out its poll."""
        try:
            with self._pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT pg_notify(%s, '')", (self._stop_channel,))
        except Exception as exc:  # closing must not fail; the listener then stops within 1 s
            log.debug("waking the LISTEN thread of %s failed: %s", self._where, exc)

    def _ensure_listener(self) -> None:
        with self._listener_lock:
            if self._listener is None and not self._closed:
                self._listener = threading.Thread(
                    target=self._listen, name="tasker-pg-listen", daemon=True
                )
                self._listener.start()

    def _not_listening(self) -> None:
        """Notifications may be lost from now on: every waiting thread goes back to polling."""
        self._listening = False
        self._wake_local()

    def _listen(self) -> None:
        """LISTEN on a dedicated connection; reconnect with capped backoff when it drops."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute("LISTEN tasker_work")
                    conn.execute("LISTEN tasker_settled")
                    conn.execute(f"LISTEN {self._stop_channel}")
                    delay = 0.5
                    self._listening = True
                    self._wake_local()  # whatever was announced while we were not listening
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=1.0):
                            if self._stopping.is_set():
                                break
                            if notify.channel == _SETTLED_CHANNEL:
                                self._on_settled_notify(notify.payload)
                            else:
                                self._on_notify(notify.payload)
            except psycopg.Error as exc:
                self._not_listening()
                if self._stopping.is_set():
                    return
                log.warning(
                    "LISTEN connection to %s lost (%s); reconnecting in %.1fs, polling meanwhile",
                    self._where,
                    exc,
                    delay,
                )
            except Exception:
                self._not_listening()
                log.exception("LISTEN loop failed; restarting it in %.1fs", delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, 30.0)


def _in_namespaces(claim_any: str) -> str:
    """``claim_steps_in``: ``claim_steps_any`` with its candidates filtered by namespace (a
    text of its own, so each keeps its plan)."""
    marker = "/* namespaces */"
    if claim_any.count(marker) != 1:
        raise ValueError(f"claim_steps_any must hold {marker} exactly once")
    return claim_any.replace(
        marker, "AND namespace IN (SELECT jsonb_array_elements_text(%(namespaces)s::jsonb))"
    )


def _with_defaults(
    params: dict[str, Any],
    *,
    connect_timeout_s: float,
    statement_timeout_s: float,
    lock_timeout_s: float,
    idle_in_transaction_timeout_s: float,
) -> dict[str, Any]:
    """Connection parameters: ours as defaults, the URL's own values win.

    Session settings travel in libpq ``options`` (no extra round trip per connection); the
    URL's own ``options`` come last, so a ``-c`` there overrides ours. Keepalives let an idle
    connection (the LISTEN one above all) notice a dead peer. Prepared statements use generic
    plans: the store's statements look rows up by key, and with ``auto`` PostgreSQL kept
    re-planning some at every run (ADR 0018). Sequential scans are off: a plan made while the
    tables are small would otherwise scan them whole for as long as the connection lives, each
    scan longer as they grow (ADR 0024). JIT is off: a generic plan's cost is estimated for
    unknown values, often above ``jit_above_cost``, and compiling took 100 ms a run of the claim.
    """
    ms = {
        "statement_timeout": statement_timeout_s,
        "lock_timeout": lock_timeout_s,
        "idle_in_transaction_session_timeout": idle_in_transaction_timeout_s,
    }
    ours = " ".join(f"-c {name}={int(value * 1000)}" for name, value in ms.items())
    merged = dict(params)
    plans = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c jit=off"
    merged["options"] = f"-c TimeZone=UTC {plans} {ours} {params.get('options', '')}".strip()
    merged.setdefault("connect_timeout", str(max(2, math.ceil(connect_timeout_s))))
    merged.setdefault("application_name", "tasker")
    merged.setdefault("keepalives", "1")
    merged.setdefault("keepalives_idle", "10")
    merged.setdefault("keepalives_interval", "5")
    merged.setdefault("keepalives_count", "3")
    return merged
