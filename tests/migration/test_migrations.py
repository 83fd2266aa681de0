"""Migrations applied to an empty database give exactly the schema ``schema.sql`` describes.

Per backend: SQLite compares ``sqlite_master``; PostgreSQL compares columns, indexes and
constraints of two fresh databases. Plus: the two backends keep the same tables and columns,
migrating twice is a no-op, and many processes may migrate one database at once.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import tasker.store
from tasker.errors import MigrationRequired
from tasker.store import open_store
from tasker.store.migrate import discover_migrations
from tasker.store.sqlite import SqliteStore
from tests.conftest import PgDatabaseFactory

# psycopg is imported inside the PostgreSQL tests: the SQLite ones must run without the driver.
SQLITE_DIR = Path(tasker.store.__file__).parent / "sqlite"
POSTGRES_DIR = Path(tasker.store.__file__).parent / "postgres"
TABLES = {
    "schema_migrations",
    "named_tasks",
    "tasks",
    "workflow_steps",
    "workflow_step_edges",
    "task_transitions",
    "workflow_step_transitions",
    "workflow_step_result_audit",
    "dlq_entries",
}
POSTGRES_ONLY_COLUMNS = {("workflow_steps", "step_seq")}  # SQLite's implicit rowid


def normalized(sql: str | None) -> str | None:
    if sql is None:
        return None
    without_comments = re.sub(r"--[^\n]*", "", sql)
    # ALTER TABLE ... ADD COLUMN inserts ", column" right after the last column (no space).
    return re.sub(r" ([,)])", r"\1", " ".join(without_comments.split()))


# -- SQLite ------------------------------------------------------------------------------------


def sqlite_schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    conn.close()
    return [(kind, name, table, normalized(sql)) for kind, name, table, sql in rows]


def sqlite_columns(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        columns = {
            (table, row[1])
            for table in TABLES
            for row in conn.execute(f"PRAGMA table_info({table})").fetchall()
        }
    conn.close()
    return columns


def sqlite_from_schema_sql(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript((SQLITE_DIR / "schema.sql").read_text())
    conn.close()


def test_sqlite_migrations_build_exactly_schema_sql(tmp_path: Path) -> None:
    migrated, direct = tmp_path / "migrated.db", tmp_path / "direct.db"
    SqliteStore(migrated).close()
    sqlite_from_schema_sql(direct)

    from_migrations, from_schema = sqlite_schema(migrated), sqlite_schema(direct)

    assert {name for kind, name, _, _ in from_schema if kind == "table"} == TABLES
    assert {name for kind, name, _, _ in from_schema if kind == "view"} == {
        "workflow_steps_eligible"
    }
    assert from_migrations == from_schema


def test_sqlite_migrating_again_applies_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tasker.db")
    try:
        again = store.migrate()
    finally:
        store.close()

    assert again == 0


# -- PostgreSQL --------------------------------------------------------------------------------


def pg_schema(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        # Column order by rank: a dropped column leaves a gap in ordinal_position.
        "columns": "SELECT table_name, column_name,"
        " row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position), data_type,"
        " is_nullable, column_default, is_identity, identity_generation"
        " FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name IN (SELECT table_name"
        " FROM information_schema.tables WHERE table_schema = 'public'"
        " AND table_type = 'BASE TABLE') ORDER BY table_name, ordinal_position",
        "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'"
        " ORDER BY viewname",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'public' ORDER BY tablename, indexname",
        "constraints": "SELECT conrelid::regclass::text, conname, contype,"
        " pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    }
    import psycopg

    with psycopg.connect(dsn) as conn:
        return {key: conn.execute(sql).fetchall() for key, sql in queries.items()}


def pg_from_schema_sql(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((POSTGRES_DIR / "schema.sql").read_text())


@pytest.mark.postgres
def test_postgres_migrations_build_exactly_schema_sql(
    pg_database_factory: PgDatabaseFactory,
) -> None:
    with pg_database_factory.database() as migrated, pg_database_factory.database() as direct:
        open_store(migrated).close()
        pg_from_schema_sql(direct)
        from_migrations, from_schema = pg_schema(migrated), pg_schema(direct)

    assert {row[0] for row in from_schema["columns"]} == TABLES
    assert [row[0] for row in from_schema["views"]] == ["workflow_steps_eligible"]
    assert {row[2] for row in from_schema["constraints"]} == {"p", "u", "f", "c"}
    assert from_migrations == from_schema


@pytest.mark.postgres
def test_both_backends_have_the_same_tables_and_columns(
    tmp_path: Path, pg_database_factory: PgDatabaseFactory
) -> None:
    sqlite_from_schema_sql(tmp_path / "direct.db")
    with pg_database_factory.database() as dsn:
        pg_from_schema_sql(dsn)
        pg_columns = {(row[0], row[1]) for row in pg_schema(dsn)["columns"]}

    assert pg_columns - POSTGRES_ONLY_COLUMNS == sqlite_columns(tmp_path / "direct.db")


@pytest.mark.postgres
def test_postgres_migrating_again_applies_nothing(fresh_pg_dsn: str) -> None:
    import psycopg

    store = open_store(fresh_pg_dsn)
    try:
        again = store.migrate()
    finally:
        store.close()
    with psycopg.connect(fresh_pg_dsn) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()

    assert again == 0
    assert versions == [(m.version,) for m in discover_migrations(POSTGRES_DIR / "migrations")]


@pytest.mark.postgres
def test_many_processes_starting_at_once_migrate_once(fresh_pg_dsn: str) -> None:
    import psycopg

    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait(timeout=10)
        try:
            open_store(fresh_pg_dsn).close()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with psycopg.connect(fresh_pg_dsn) as conn:
        row = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()

    assert errors == []
    assert row == (len(discover_migrations(POSTGRES_DIR / "migrations")),)


# -- both ------------------------------------------------------------------------------------


def test_an_unmigrated_database_is_refused_without_migrate(store_url: str) -> None:
    with pytest.raises(MigrationRequired, match="tasker migrate"):
        open_store(store_url, migrate=False)
