"""SQLite store: one file in WAL mode, a connection per thread, serialised writers.

Writers take an in-process lock before ``BEGIN IMMEDIATE``: threads of one process hand the
write lock over without SQLite's sleeping busy handler, and other processes on the same file
still serialise on SQLite's own lock (busy timeout) and obey every compare-and-set.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasker.errors import MigrationRequired, StoreError, StoreUnavailable
from tasker.store.migrate import discover_migrations
from tasker.store.queries import load_query_files
from tasker.store.sql import SqlTransaction, StoreStats, new_uuid

__all__ = ["SqliteDialect", "SqliteStore"]

_HERE = Path(__file__).parent
log = logging.getLogger(__name__)

# WAL checkpoints (docs/decisions/0017-sqlite-write-path.md). SQLite's automatic
# checkpoint runs inside the COMMIT that crosses its threshold, under this process's write lock,
# and with synchronous=NORMAL it fsyncs there: every writer queued behind the lock waits for the
# copy of the whole WAL. Instead a checkpointer thread of the store copies what is committed, on
# its own connection and off the write lock, each time the transactions have changed
# _CHECKPOINT_ROWS rows since its last pass: rows changed (triggers' included) stand for the WAL
# pages written whatever the size of a transaction (a commit of a claim batch writes a thousand
# pages, a single step's about ten), and 16,000 rows are some 3,000-7,500 pages. Once the WAL
# holds _RESTART_FRAMES frames, the pass then copies the few frames committed meanwhile under
# the write lock, so that the next writer finds every frame copied and starts the WAL over (the
# only way SQLite restarts it). The automatic checkpoint stays as a bound on the WAL.
_CHECKPOINT_ROWS = 16_000
_RESTART_FRAMES = 4_096
# The write connection's page cache: a commit of a claim batch (up to 128 steps of as many tasks)
# touches some 1,000 pages, more than SQLite's default of 2 MiB holds.
_WRITER_CACHE_KIB = 16_384
_AUTOCHECKPOINT_PAGES = 10_000
# How long close() waits for transactions and reads in flight before it leaves their
# connections open (closing a connection under a running statement crashes the process).
_CLOSE_WAIT_S = 10.0


# json.dumps with non-default arguments builds a new JSONEncoder per call; one shared encoder
# (stateless, so safe across threads) gives the same text for a fraction of the cost.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))

# The last timestamp formatted and its text: one transaction formats the same ``now`` for most
# of its parameters. A tuple is replaced atomically, so threads never see a mismatched pair.
_last_ts: tuple[datetime | None, str] = (None, "")


def _format_ts(value: datetime) -> str:
    global _last_ts
    last = _last_ts
    if last[0] is value:
        return last[1]
    original = value
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    _last_ts = (original, text)
    return text


class SqliteDialect:
    name = "sqlite"

    def placeholder(self, name: str, kind: str) -> str:  # noqa: ARG002 - one marker for all kinds
        return f":{name}"

    def marker(self, kind: str) -> str:  # noqa: ARG002 - one marker for all kinds
        return "?"

    def json_param(self, value: Any) -> Any:
        return _JSON_ENCODER.encode(value)

    def json_nested(self, value: Any) -> Any:
        return value  # value ->> 'key' gives an object's or array's JSON text, as encoded here

    def json_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)

    def ts_param(self, value: datetime | None) -> Any:
        return None if value is None else _format_ts(value)

    def ts_value(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def bool_param(self, value: bool) -> Any:
        return 1 if value else 0

    def array_param(self, values: Sequence[str]) -> Any:
        return _JSON_ENCODER.encode(list(values))


class SqliteStore:
    """The embedded backend. ``path`` is a file; ``:memory:`` is refused (threads need a file)."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, migrate: bool = True, busy_timeout_s: float = 30.0):
        if str(path) in ("", ":memory:"):
            raise StoreError("the SQLite store needs a file path, not an in-memory database")
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._since_checkpoint = 0  # rows changed since the last checkpoint; under _write_lock
        self._checkpointer: _Checkpointer | None = None
        self._connections: list[sqlite3.Connection] = []
        self._write_conn: sqlite3.Connection | None = None  # under _write_lock
        self._connections_lock = threading.Lock()
        # Transactions and reads in flight, and close() waiting for them (ADR 0017).
        self._in_use = 0
        self._unused = threading.Condition(self._connections_lock)
        self._queries = load_query_files(_HERE)
        self._dialect = SqliteDialect()
        self.stats = StoreStats()
        self.processor_uuid = new_uuid()
        self._work = threading.Condition()
        self._work_seq = 0
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the directory of {self.path}: {exc}") from exc
        if migrate:
            self.migrate()
        else:
            self._check_schema()

    # -- connections ----------------------------------------------------------------------

    def _writer(self) -> sqlite3.Connection:
        """The connection of every write transaction of this store (``_write_lock`` held).

        One connection for all of them, as they run one at a time anyway: SQLite drops a
        connection's page cache whenever another connection has written, so with a connection
        per thread each transaction started cold after the caller's or another thread's commit
        and read its pages again; this one keeps a cache large enough for a claim batch's
        pages (docs/decisions/0017-sqlite-write-path.md)."""
        conn = self._write_conn
        if conn is None:
            conn = self._write_conn = self._open()
            try:
                conn.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot set up {self.path}: {exc}") from exc
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, for reads (and migrations and checkpoints)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = self._open()
        self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def on_settled(self, callback: Callable[[Iterable[str]], None]) -> None:
        """Nothing to subscribe to: SQLite has no notifications between processes."""

    def hears_settles(self) -> bool:
        return False

    def close(self) -> None:
        """Close every connection this store opened (all threads), once the transactions and
        reads in flight have ended; new ones raise ``StoreError``.

        A thread may still be recording a result when its pool's shutdown grace ran out, and
        every write runs on one shared connection: closing it under a running statement
        crashes the process. After ``_CLOSE_WAIT_S`` the connections still in use are left
        open instead (and logged)."""
        with self._connections_lock:
            self._closed = True
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()  # before its connection is closed
        with self._connections_lock:
            self._unused.wait_for(lambda: self._in_use == 0, _CLOSE_WAIT_S)
            if self._in_use:
                log.warning(
                    "closing %s with %d transactions or reads still running: their"
                    " connections are left open",
                    self.path,
                    self._in_use,
                )
            else:
                for conn in self._connections:
                    conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._write_conn = None
        with self._work:
            self._work.notify_all()

    # -- schema ---------------------------------------------------------------------------

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _check_schema(self) -> None:
        latest = len(discover_migrations(_HERE / "migrations"))
        current = self._schema_version(self._connection())
        if current < latest:
            raise MigrationRequired(
                f"{self.path} has schema version {current}, this tasker needs {latest}: "
                "run `tasker migrate` (or open the store with migrate=True)"
            )

    def migrate(self) -> int:
        """Apply pending migrations; returns how many ran. Safe to call from many processes."""
        conn = self._connection()
        applied = 0
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                current = self._schema_version(conn)
                for migration in discover_migrations(_HERE / "migrations"):
                    if migration.version <= current:
                        continue
                    for statement in _split_sql(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES (?, ?, ?)",
                        (migration.version, migration.name, _format_ts(datetime.now(UTC))),
                    )
                    applied += 1
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise StoreError(f"migrating {self.path} failed: {exc}") from exc
        return applied

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """A write transaction; commits on success, rolls back on any exception.

        The write lock and ``BEGIN IMMEDIATE`` wait for the transaction's first statement, so
        that the Python work a caller does before it runs outside the lock."""
        self._enter()
        deferred = _DeferredBegin(self)
        tx = SqlTransaction(deferred, self._queries, self._dialect, self.stats, self.processor_uuid)
        checkpoint = False
        try:
            try:
                yield tx
            except BaseException:
                if deferred.begun:
                    deferred.conn.execute("ROLLBACK")
                raise
            if deferred.begun:
                conn = deferred.conn
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"commit failed on {self.path}: {exc}") from exc
                self._since_checkpoint += conn.total_changes - deferred.changes
                checkpoint = self._since_checkpoint >= _CHECKPOINT_ROWS
                if checkpoint:
                    self._since_checkpoint = 0
            self.stats.commits += 1
        finally:
            if deferred.locked:
                self._write_lock.release()
            self._leave()
        if checkpoint:
            self._request_checkpoint()
        wake = tx.wake_count()
        if wake != 0:
            self._wake_local(wake)

    def _request_checkpoint(self) -> None:
        """Have the checkpointer thread (started on first use) run a checkpoint soon."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            with self._connections_lock:
                if self._closed:
                    return
                checkpointer = self._checkpointer
                if checkpointer is None:
                    checkpointer = _Checkpointer(self._checkpoint_pass, self.path)
                    self._checkpointer = checkpointer
        checkpointer.request()

    def _checkpoint_pass(self) -> None:
        """The checkpointer's pass: copy what is committed, off the write lock; when the WAL
        has grown long, copy the rest (what was committed meanwhile) under the write lock, so
        that the next writer starts the WAL over from its beginning."""
        _, frames, _ = self._checkpoint()
        if frames >= _RESTART_FRAMES:
            with self._write_lock:
                self._checkpoint()

    def _checkpoint(self) -> tuple[int, int, int]:
        """Copy committed WAL frames into the database file, on this thread's connection.
        PASSIVE never blocks writers or readers; what it cannot copy now, a later one will.
        Returns SQLite's ``(busy, frames in the WAL, frames copied)``."""
        row = self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        """A read-only snapshot (no write lock taken)."""
        self._enter()
        try:
            conn = self._connection()
            tx = SqlTransaction(conn, self._queries, self._dialect, self.stats, self.processor_uuid)
            conn.execute("BEGIN")
            try:
                yield tx
            finally:
                conn.execute("COMMIT")
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._connections_lock:
            if self._closed:
                raise StoreError(f"the store of {self.path} is closed")
            self._in_use += 1

    def _leave(self) -> None:
        with self._connections_lock:
            self._in_use -= 1
            if self._in_use == 0:
                self._unused.notify_all()

    # -- wake-ups -------------------------------------------------------------------------

    def notify_work(self) -> None:
        """Wake every idle worker of this process."""
        self._wake_local(None)

    def _wake_local(self, count: int | None) -> None:
        """Announce work; wake ``count`` idle workers (``None``: all). A busy worker sees the
        new sequence number before it next sleeps, so waking fewer loses no work."""
        with self._work:
            self._work_seq += 1
            if count is None:
                self._work.notify_all()
            else:
                self._work.notify(count)

    def work_sequence(self) -> int:
        return self._work_seq

    def wait_for_work(self, seen: int, timeout_s: float) -> int:
        """Block until work is announced after ``seen`` or the timeout passes (polling fallback)."""
        with self._work:
            if self._work_seq == seen and not self._closed:
                self._work.wait(timeout_s)
            return self._work_seq


class _DeferredBegin:
    """The connection of a write transaction that takes the store's write lock and begins at
    its first statement."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._conn: sqlite3.Connection | None = None
        self.locked = False
        self.begun = False
        self.changes = 0

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's write connection, once the transaction has begun."""
        assert self._conn is not None
        return self._conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        if not self.begun:
            self._begin()
        return self.conn.execute(sql, params)

    def _begin(self) -> None:
        store = self._store
        store._write_lock.acquire()
        self.locked = True
        conn = self._conn = store._writer()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite database {store.path} is locked: {exc}") from exc
        self.begun = True
        self.changes = conn.total_changes


class _Checkpointer:
    """A daemon thread that runs the store's checkpoints when asked, so that neither a writer
    (under the write lock) nor the thread that committed (the pool's busy worker) waits for
    the copy and its fsyncs."""

    def __init__(self, run: Callable[[], None], path: Path) -> None:
        self._run = run
        self._path = path
        self._wanted = threading.Condition()
        self._pending = False
        self._stopping = False
        self._thread = threading.Thread(
            target=self._loop, name="tasker-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def request(self) -> None:
        with self._wanted:
            self._pending = True
            self._wanted.notify()

    def stop(self) -> None:
        with self._wanted:
            self._stopping = True
            self._wanted.notify()
        self._thread.join(30.0)

    def _loop(self) -> None:
        while True:
            with self._wanted:
                while not self._pending and not self._stopping:
                    self._wanted.wait()
                if self._stopping:
                    return
                self._pending = False
            try:
                self._run()
            except (sqlite3.Error, StoreError) as exc:  # commits stand; only copying waits
                log.warning("WAL checkpoint of %s failed: %s", self._path, exc)


def _split_sql(script: str) -> list[str]:
    """Split a migration file into statements; a trigger body's semicolons stay inside its
    statement (``sqlite3.complete_statement`` decides where one ends)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and line.strip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            text = pending.strip()
            if text.rstrip(";").strip():
                statements.append(text)
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
