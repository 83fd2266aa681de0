"""Closing an SQLite store waits for the transactions in flight: every write runs on one shared
connection, and closing it under a running statement crashes the process (a segfault in CI,
when a worker was still recording a result after its pool's shutdown grace)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tasker.errors import StoreError
from tasker.store.sqlite import SqliteStore


def test_close_waits_for_a_write_in_flight_which_commits_and_new_work_is_refused(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    with store.transaction() as tx:
        tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, who TEXT)")
    inside, release = threading.Event(), threading.Event()

    def write() -> None:
        with store.transaction() as tx:
            tx.execute("INSERT INTO scratch (who) VALUES ('late')")
            inside.set()
            release.wait(10.0)
            tx.execute("INSERT INTO scratch (who) VALUES ('later')")

    writer = threading.Thread(target=write)
    writer.start()
    assert inside.wait(10.0)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    still_closing = closer.is_alive()  # the write holds the shared connection
    release.set()
    writer.join(10.0)
    closer.join(10.0)

    assert still_closing
    assert not closer.is_alive()
    with pytest.raises(StoreError, match="closed"), store.transaction() as tx:
        tx.execute("SELECT 1")
    reopened = SqliteStore(tmp_path / "db.sqlite")
    try:
        with reopened.read() as tx:
            rows = [r[0] for r in tx.execute("SELECT who FROM scratch ORDER BY id").fetchall()]
    finally:
        reopened.close()
    assert rows == ["late", "later"]
