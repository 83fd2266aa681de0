"""A SQLite write transaction takes the store's write lock (and begins) at its first statement,
so the Python work its caller does before that runs while other threads write; every write
transaction runs on the store's one write connection (docs/decisions/0017-sqlite-write-path.md).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker.errors import StoreUnavailable
from tasker.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "db.sqlite", busy_timeout_s=0.05)
    with opened.transaction() as tx:
        tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, who TEXT)")
    try:
        yield opened
    finally:
        opened.close()


def _rows(store: SqliteStore) -> list[str]:
    with store.read() as tx:
        return [r[0] for r in tx.execute("SELECT who FROM scratch ORDER BY id").fetchall()]


def _insert(store: SqliteStore, who: str) -> None:
    with store.transaction() as tx:
        tx.execute("INSERT INTO scratch (who) VALUES (?)", (who,))


def test_another_thread_commits_before_the_first_statement(store: SqliteStore) -> None:
    with store.transaction() as tx:
        other = threading.Thread(target=_insert, args=(store, "other"))
        other.start()
        other.join(10.0)
        assert not other.is_alive()  # it did not wait for this transaction
        tx.execute("INSERT INTO scratch (who) VALUES (?)", ("this",))
    assert _rows(store) == ["other", "this"]


def test_after_the_first_statement_other_writers_wait(store: SqliteStore) -> None:
    inside = threading.Event()
    with store.transaction() as tx:
        tx.execute("INSERT INTO scratch (who) VALUES (?)", ("this",))
        other = threading.Thread(target=lambda: (inside.set(), _insert(store, "other")))
        other.start()
        assert inside.wait(10.0)
        other.join(0.2)
        assert other.is_alive()  # waiting for the write lock
    other.join(10.0)
    assert _rows(store) == ["this", "other"]


def _fail(store: SqliteStore, *, after_a_statement: bool) -> None:
    with store.transaction() as tx:
        if after_a_statement:
            tx.execute("INSERT INTO scratch (who) VALUES (?)", ("lost",))
        raise RuntimeError("boom")


def test_a_failure_rolls_back_and_frees_the_lock(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError):
        _fail(store, after_a_statement=True)
    with pytest.raises(RuntimeError):
        _fail(store, after_a_statement=False)
    _insert(store, "kept")
    assert _rows(store) == ["kept"]


def test_a_database_locked_by_another_process_raises_unavailable_and_frees_the_lock(
    store: SqliteStore,
) -> None:
    outsider = sqlite3.connect(store.path, isolation_level=None)
    try:
        outsider.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable), store.transaction() as tx:
            tx.execute("INSERT INTO scratch (who) VALUES (?)", ("refused",))
        outsider.execute("ROLLBACK")
    finally:
        outsider.close()
    _insert(store, "after")
    assert _rows(store) == ["after"]


def test_threads_writing_at_once_share_the_write_connection_one_transaction_at_a_time(
    store: SqliteStore,
) -> None:
    """Every write transaction runs on the store's one write connection; transactions of
    several threads still see only their own uncommitted rows and all of them commit."""
    errors: list[BaseException] = []

    def work(who: str) -> None:
        try:
            for i in range(25):
                with store.transaction() as tx:
                    tx.execute("INSERT INTO scratch (who) VALUES (?)", (f"{who}-{i}",))
                    tx.execute("INSERT INTO scratch (who) VALUES (?)", (f"{who}-{i}b",))
                    mine = tx.execute(
                        "SELECT COUNT(*) FROM scratch WHERE who IN (?, ?)",
                        (f"{who}-{i}", f"{who}-{i}b"),
                    ).fetchone()[0]
                    assert mine == 2
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert errors == []
    assert len(_rows(store)) == 4 * 25 * 2
