"""The PostgreSQL and backend fixtures of tests/conftest.py: isolation, cleanup, templates."""

from __future__ import annotations

from pathlib import Path
from typing import LiteralString

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.conftest import (
    PgDatabaseFactory,
    dsn_with_dbname,
    must_fail_without_pg,
    pg_connect_problem,
)


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def _public_tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " ORDER BY table_name"
        ).fetchall()
    return [str(row[0]) for row in rows]


def _execute(dsn: str, statement: LiteralString) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.mark.postgres
def test_new_database_is_empty_and_does_not_see_another_tests_tables(
    pg_database_factory: PgDatabaseFactory,
) -> None:
    with pg_database_factory.database() as first, pg_database_factory.database() as second:
        _execute(first, "CREATE TABLE probe (id int)")

        assert first != second
        assert _public_tables(first) == ["probe"]
        assert _public_tables(second) == []


@pytest.mark.postgres
def test_database_is_dropped_on_exit_even_when_the_test_fails(
    pg_database_factory: PgDatabaseFactory,
) -> None:
    seen: list[tuple[str, bool]] = []

    def failing_test_body() -> None:
        with pg_database_factory.database() as dsn:
            seen.append((_dbname(dsn), pg_database_factory.exists(_dbname(dsn))))
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        failing_test_body()

    [(name, existed_inside)] = seen
    assert existed_inside
    assert not pg_database_factory.exists(name)


@pytest.mark.postgres
def test_factory_close_drops_every_database_it_still_holds(
    pg_dsn: str, pg_database_factory: PgDatabaseFactory
) -> None:
    factory = PgDatabaseFactory(pg_dsn)
    names = [factory.create(), factory.create()]
    factory.close()

    assert [pg_database_factory.exists(name) for name in names] == [False, False]


@pytest.mark.postgres
def test_fresh_pg_dsn_is_a_new_database_separate_from_the_admin_one(
    fresh_pg_dsn: str, pg_dsn: str
) -> None:
    _execute(fresh_pg_dsn, "CREATE TABLE probe_fresh (id int)")

    assert _dbname(fresh_pg_dsn).startswith("tasker_test_")
    assert "probe_fresh" not in _public_tables(pg_dsn)


@pytest.mark.postgres
def test_template_is_built_once_and_each_copy_starts_from_it(
    pg_database_factory: PgDatabaseFactory,
) -> None:
    calls: list[str] = []

    def setup(dsn: str) -> None:
        calls.append(dsn)
        _execute(dsn, "CREATE TABLE item (id int); INSERT INTO item VALUES (1)")

    template = pg_database_factory.make_template("fixture_probe", setup)
    again = pg_database_factory.make_template("fixture_probe", setup)

    with pg_database_factory.database(template) as a, pg_database_factory.database(template) as b:
        _execute(a, "INSERT INTO item VALUES (2)")
        with psycopg.connect(b) as conn:
            rows = conn.execute("SELECT id FROM item").fetchall()

    assert again == template
    assert len(calls) == 1
    assert rows == [(1,)]


def test_template_label_must_be_a_plain_identifier() -> None:
    factory = PgDatabaseFactory("postgresql://unused@127.0.0.1:1/postgres")

    with pytest.raises(ValueError, match="template label"):
        factory.make_template('x"; DROP DATABASE postgres; --', lambda dsn: None)


def test_missing_postgres_fails_on_ci_and_when_a_dsn_is_given_but_skips_otherwise() -> None:
    assert must_fail_without_pg({"CI": "true"})
    assert must_fail_without_pg({"TASKER_TEST_PG_DSN": "postgresql://x@127.0.0.1:1/postgres"})
    assert not must_fail_without_pg({})
    assert not must_fail_without_pg({"CI": "false"})


def test_unreachable_server_is_reported_with_the_driver_error() -> None:
    problem = pg_connect_problem("postgresql://postgres@127.0.0.1:1/postgres")

    assert problem is not None
    assert "OperationalError" in problem


def test_dsn_with_dbname_keeps_every_connection_parameter() -> None:
    dsn = "host='/tmp/pg dir' port=5433 user=me password=p@ss:w/rd sslmode=disable dbname=postgres"

    url = dsn_with_dbname(dsn, "tasker_test_1")

    assert url.startswith("postgresql://")
    assert conninfo_to_dict(url) == {
        "host": "/tmp/pg dir",
        "port": "5433",
        "user": "me",
        "password": "p@ss:w/rd",
        "sslmode": "disable",
        "dbname": "tasker_test_1",
    }


def test_store_url_gives_each_backend_a_new_empty_store(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["store_url"]
    if backend == "sqlite":
        path = Path(store_url.removeprefix("sqlite:///"))
        assert store_url.startswith("sqlite:///")
        assert path.parent == tmp_path
        assert not path.exists()
    else:
        assert store_url.startswith("postgresql://")
        assert _public_tables(store_url) == []
