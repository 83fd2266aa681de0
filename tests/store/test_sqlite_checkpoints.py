"""The SQLite store copies its WAL into the database file on a checkpointer thread of its own,
off the write path, once its transactions have changed enough rows; once the WAL is long it
lets the next writer start the WAL over (docs/decisions/0017-sqlite-write-path.md).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tasker.store.sqlite as sqlite_store
from tasker.store.sqlite import SqliteStore

_THREAD = "tasker-sqlite-checkpoint"


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _THREAD and t.is_alive()]


def _write(store: SqliteStore, rows: int, payload: bytes = b"x" * 3000) -> None:
    with store.transaction() as tx:
        for _ in range(rows):
            tx.execute("INSERT INTO scratch (payload) VALUES (?)", (payload,))


def _wal_state(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames copied into the database file), read from the WAL index
    (the ``-shm`` file: ``mxFrame`` at byte 16 of its header, ``nBackfill`` at byte 96; see
    SQLite's walformat.html) without checkpointing anything."""
    header = path.with_name(path.name + "-shm").read_bytes()[:100]
    order = "little" if sys.byteorder == "little" else "big"
    return int.from_bytes(header[16:20], order), int.from_bytes(header[96:100], order)


def _wait_until(condition: object, timeout_s: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "db.sqlite")
    with opened.transaction() as tx:
        tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, payload BLOB)")
    try:
        yield opened
    finally:
        opened.close()


def test_few_changes_start_no_checkpointer(store: SqliteStore) -> None:
    before = len(_checkpointers())
    for _ in range(20):
        _write(store, 5)
    assert len(_checkpointers()) == before
    frames, copied = _wal_state(store.path)
    assert frames > 0
    assert copied == 0


def test_the_checkpointer_copies_the_wal_and_the_next_writer_restarts_it(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "_CHECKPOINT_ROWS", 50)
    monkeypatch.setattr(sqlite_store, "_RESTART_FRAMES", 1)
    for _ in range(40):
        _write(store, 10)  # a checkpoint requested every 5 transactions
    _write(store, 50)
    # Nothing else checkpoints here (the automatic checkpoint's threshold is far), so the
    # checkpointer copies everything committed into the database file...
    _wait_until(lambda: _wal_state(store.path)[1] == _wal_state(store.path)[0])
    frames_before, _ = _wal_state(store.path)
    assert frames_before > 0
    # ...and the next writer starts the WAL over: it holds that transaction's frames only.
    _write(store, 1)
    frames_after, copied = _wal_state(store.path)
    assert frames_after < frames_before
    assert frames_after <= 10
    assert copied == 0
    with store.read() as tx:
        assert tx.execute("SELECT COUNT(*) FROM scratch").fetchone()[0] == 40 * 10 + 50 + 1


def test_a_checkpoint_never_blocks_the_writer_that_asked_for_it(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committing thread returns while the checkpointer's pass is still running."""
    monkeypatch.setattr(sqlite_store, "_CHECKPOINT_ROWS", 1)
    started, release = threading.Event(), threading.Event()

    def slow_pass(self: SqliteStore) -> None:
        started.set()
        release.wait(10.0)

    monkeypatch.setattr(SqliteStore, "_checkpoint_pass", slow_pass)
    _write(store, 1)
    assert started.wait(10.0)
    _write(store, 1)  # commits although the checkpointer is busy
    release.set()
    with store.read() as tx:
        assert tx.execute("SELECT COUNT(*) FROM scratch").fetchone()[0] == 2


def test_close_stops_the_checkpointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "_CHECKPOINT_ROWS", 1)
    before = len(_checkpointers())
    store = SqliteStore(tmp_path / "db.sqlite")
    with store.transaction() as tx:
        tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, payload BLOB)")
    _write(store, 3)
    _wait_until(lambda: len(_checkpointers()) == before + 1)
    store.close()
    assert len(_checkpointers()) == before
