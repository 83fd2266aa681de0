"""What only the PostgreSQL store does: placeholders, session limits, error translation,
reconnecting after lost connections, and waking workers of other processes through NOTIFY."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import psycopg
import pytest

from tasker.domain.states import TaskState
from tasker.errors import ConfigError, StoreError, StoreUnavailable
from tasker.store.postgres import PostgresStore, to_psycopg_placeholders
from tests.store.test_store_contract import bare_task

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(fresh_pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(fresh_pg_dsn)
    try:
        yield opened
    finally:
        opened.close()


def terminate_sessions(admin_dsn: str, database_of: str) -> int:
    """Kill every server session on the database of ``database_of`` (a store URL)."""
    dbname = database_of.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        ).fetchall()
    return len(rows)


# -- placeholders (no server needed) ---------------------------------------------------------


def test_named_parameters_become_psycopg_placeholders_and_casts_stay() -> None:
    sql = "SELECT :a::jsonb, :b_2, x % 2, arr[1:3] FROM t WHERE c = :c AND d::text = ':not'"

    assert to_psycopg_placeholders(sql) == (
        "SELECT %(a)s::jsonb, %(b_2)s, x %% 2, arr[1:3] FROM t WHERE c = %(c)s AND d::text = ':not'"
    )


def test_quoted_identifiers_and_doubled_quotes_are_not_parameters() -> None:
    sql = "SELECT \"odd:name\", 'it''s :x' FROM t WHERE a = :a"

    assert to_psycopg_placeholders(sql) == "SELECT \"odd:name\", 'it''s :x' FROM t WHERE a = %(a)s"


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid PostgreSQL URL"):
        PostgresStore("postgresql://[::1")


# -- connecting and session settings ---------------------------------------------------------


@pytest.mark.postgres
def test_an_unreachable_server_is_store_unavailable_without_the_password(pg_dsn: str) -> None:
    url = "postgresql://tasker:s3cret-pw@127.0.0.1:1/tasker"

    with pytest.raises(StoreUnavailable) as raised:
        PostgresStore(url, connect_timeout_s=2)

    assert "127.0.0.1:1/tasker" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


@pytest.mark.postgres
def test_sessions_get_our_limits_unless_the_url_sets_its_own(fresh_pg_dsn: str) -> None:
    joiner = "&" if "?" in fresh_pg_dsn else "?"
    custom_url = fresh_pg_dsn + joiner + "options=" + quote("-c statement_timeout=1234")
    default, custom = PostgresStore(fresh_pg_dsn), PostgresStore(custom_url, migrate=False)
    try:
        shown = []
        for opened in (default, custom):
            with opened.read() as tx:
                shown.append(
                    [
                        next(iter(tx.execute(f"SHOW {name}").fetchall()[0].values()))
                        for name in ("statement_timeout", "lock_timeout", "timezone")
                    ]
                )
    finally:
        default.close()
        custom.close()

    assert shown == [["30s", "10s", "UTC"], ["1234ms", "10s", "UTC"]]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_row_lock_wait_past_lock_timeout_is_store_unavailable(fresh_pg_dsn: str) -> None:
    store = PostgresStore(fresh_pg_dsn, lock_timeout_s=0.2)
    try:
        with store.transaction() as tx:
            tx.upsert_named_task("ns", "t", "1.0.0", {}, "strict", NOW)
        with store.transaction() as holder:
            holder.execute("SELECT 1 FROM named_tasks FOR UPDATE")
            with (
                pytest.raises(StoreUnavailable, match="55P03") as raised,
                store.transaction() as waiter,
            ):
                waiter.upsert_named_task("ns", "t", "1.0.0", {"v": 2}, "strict", NOW)
    finally:
        store.close()

    assert not isinstance(raised.value, psycopg.Error)


@pytest.mark.postgres
def test_a_statement_past_statement_timeout_is_store_unavailable(fresh_pg_dsn: str) -> None:
    store = PostgresStore(fresh_pg_dsn, statement_timeout_s=0.1)
    try:
        with pytest.raises(StoreUnavailable, match="57014"), store.transaction() as tx:
            tx.execute("SELECT pg_sleep(2)")
    finally:
        store.close()


@pytest.mark.postgres
def test_a_failing_statement_is_store_error_and_rolls_the_transaction_back(
    store: PostgresStore,
) -> None:
    def write_then_fail() -> None:
        with store.transaction() as tx:
            tx.upsert_named_task("ns", "t", "1.0.0", {}, "strict", NOW)
            tx.execute("SELECT no_such_column FROM named_tasks")

    with pytest.raises(StoreError, match="no_such_column") as raised:
        write_then_fail()

    with store.read() as tx:
        assert tx.table_counts()["named_tasks"] == 0
    assert type(raised.value) is StoreError
    assert isinstance(raised.value.__cause__, psycopg.errors.UndefinedColumn)


@pytest.mark.postgres
def test_a_failing_statement_sent_without_waiting_fails_the_commit_and_writes_nothing(
    store: PostgresStore,
) -> None:
    """Edges, inserts and audit rows are sent with the next statement (here: COMMIT), so
    their errors surface there; the transaction is rolled back and reported as failed, not
    as a commit of unknown outcome."""
    with store.transaction() as tx:
        task = bare_task(tx)

    def move_then_insert_a_bad_edge() -> None:
        with store.transaction() as tx:
            tx.transition_task(task, TaskState.PENDING, TaskState.INITIALIZING, "start", NOW)
            tx.insert_edge(task, "no-such-step", "no-such-step-either", "e", NOW)

    with pytest.raises(StoreError, match="a statement failed") as raised:
        move_then_insert_a_bad_edge()

    assert "outcome is unknown" not in str(raised.value)
    assert isinstance(raised.value.__cause__, psycopg.errors.ForeignKeyViolation)
    with store.read() as tx:
        assert [r.to_state for r in tx.task_transitions(task)] == ["pending"]


@pytest.mark.postgres
def test_a_held_statement_fails_at_the_next_statement_that_is_read(store: PostgresStore) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)

    reads: list[object] = []

    def insert_a_bad_edge_then_read() -> None:
        with store.transaction() as tx:
            tx.insert_edge(task, "no-such-step", "no-such-step-either", "e", NOW)
            reads.append(tx.get_task(task))

    with pytest.raises(StoreError, match="foreign key") as raised:
        insert_a_bad_edge_then_read()

    assert reads == []
    assert type(raised.value) is StoreError


@pytest.mark.postgres
def test_a_state_change_of_a_locked_task_from_the_wrong_state_fails_the_transaction(
    store: PostgresStore,
) -> None:
    """Under its own lock a task's state change is not waited for (nobody else can move the
    task); if it finds the task elsewhere after all, the transaction fails instead of
    committing without the change."""
    with store.transaction() as tx:
        task = bare_task(tx)

    def lock_then_move_from_the_wrong_state() -> None:
        with store.transaction() as tx:
            assert tx.lock_task(task) is not None
            tx.transition_task(task, TaskState.COMPLETE, TaskState.ERROR, "fail", NOW)
            tx.upsert_named_task("ns", "t", "1.0.0", {}, "strict", NOW)

    with pytest.raises(StoreError, match="not in state complete") as raised:
        lock_then_move_from_the_wrong_state()

    assert type(raised.value) is StoreError
    with store.read() as tx:
        assert [r.to_state for r in tx.task_transitions(task)] == ["pending"]
        assert tx.find_named_task("ns", "t", "1.0.0") is None


@pytest.mark.postgres
def test_state_changes_of_a_locked_task_are_written_in_order(store: PostgresStore) -> None:
    with store.transaction() as tx:
        task = bare_task(tx)

    with store.transaction() as tx:
        assert tx.lock_task(task) is not None
        assert tx.transition_task(task, TaskState.PENDING, TaskState.INITIALIZING, "start", NOW)
        assert tx.transition_task(
            task, TaskState.INITIALIZING, TaskState.ENQUEUING_STEPS, "enqueue", NOW
        )
        seen = tx.get_task(task)

    assert seen is not None
    assert seen.state is TaskState.ENQUEUING_STEPS
    with store.read() as tx:
        rows = tx.task_transitions(task)
    assert [(r.from_state, r.to_state, r.most_recent) for r in rows] == [
        (None, "pending", False),
        ("pending", "initializing", False),
        ("initializing", "enqueuing_steps", True),
    ]


@pytest.mark.postgres
def test_the_pool_lends_the_most_recently_returned_connection_first(store: PostgresStore) -> None:
    """Warm connections (prepared statements, cached plans) are reused before idle ones."""
    pool = store._pool
    first, second = pool.getconn(), pool.getconn()
    pool.putconn(first)
    pool.putconn(second)

    lent = pool.getconn()
    pool.putconn(lent)

    assert lent is second


@pytest.mark.postgres
def test_a_read_snapshot_refuses_writes(store: PostgresStore) -> None:
    with pytest.raises(StoreError, match="read-only"), store.read() as tx:
        tx.upsert_named_task("ns", "t", "1.0.0", {}, "strict", NOW)


@pytest.mark.postgres
def test_a_closed_store_refuses_transactions(fresh_pg_dsn: str) -> None:
    store = PostgresStore(fresh_pg_dsn)
    store.close()

    with pytest.raises(StoreError, match="closed"), store.transaction():
        pass


# -- lost connections ------------------------------------------------------------------------


@pytest.mark.postgres
def test_after_the_server_drops_every_session_the_next_transaction_works_again(
    store: PostgresStore, pg_dsn: str, fresh_pg_dsn: str
) -> None:
    with store.transaction() as tx:
        tx.upsert_named_task("ns", "t", "1.0.0", {}, "strict", NOW)
    assert terminate_sessions(pg_dsn, fresh_pg_dsn) >= 1

    outcomes = []
    for _ in range(3):
        try:
            with store.transaction() as tx:
                outcomes.append(tx.find_named_task("ns", "t", "1.0.0") is not None)
        except StoreUnavailable:
            outcomes.append(False)

    assert outcomes[-1] is True
    assert outcomes.count(False) <= 1


# -- waking workers ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_enqueueing_in_another_process_wakes_a_waiting_worker(fresh_pg_dsn: str) -> None:
    waiter, other = PostgresStore(fresh_pg_dsn), PostgresStore(fresh_pg_dsn, migrate=False)
    try:
        seen = waiter.wait_for_work(waiter.work_sequence(), 5.0)  # returns once it listens
        with other.transaction() as tx:
            tx.find_named_task("ns", "t", "1.0.0")  # commits, but enqueues nothing
        quiet = waiter.wait_for_work(seen, 0.5)

        def enqueue() -> None:
            time.sleep(0.2)
            with other.transaction() as tx:
                tx.wake_namespaces.add("race")

        thread = threading.Thread(target=enqueue)
        thread.start()
        started = time.monotonic()
        woken = waiter.wait_for_work(seen, 10.0)
        waited = time.monotonic() - started
        thread.join()
    finally:
        waiter.close()
        other.close()

    assert quiet == seen
    assert woken > seen
    assert waited < 5.0


@pytest.mark.postgres
def test_the_listener_reconnects_after_its_session_is_killed(
    pg_dsn: str, fresh_pg_dsn: str
) -> None:
    waiter = PostgresStore(fresh_pg_dsn)
    try:
        seen = waiter.wait_for_work(waiter.work_sequence(), 5.0)
        terminate_sessions(pg_dsn, fresh_pg_dsn)
        seen = waiter.wait_for_work(seen, 10.0)  # the reconnect itself wakes (missed work)
        other = PostgresStore(fresh_pg_dsn, migrate=False)
        try:
            other.notify_work()
            started = time.monotonic()
            woken = waiter.wait_for_work(seen, 10.0)
            waited = time.monotonic() - started
        finally:
            other.close()
    finally:
        waiter.close()

    assert woken > seen
    assert waited < 5.0
