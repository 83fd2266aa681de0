"""Fixtures shared by the whole test suite.

Sections:

- PostgreSQL: ``pg_dsn`` (the server), ``pg_database_factory`` (create, clone and drop
  databases), ``pg_template`` (what each fresh database starts as) and ``fresh_pg_dsn`` (a new
  database per test).
- Backends: ``store_url``, parametrized over SQLite and PostgreSQL, for the store contract suite.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import pytest

if TYPE_CHECKING:
    import psycopg


# --------------------------------------------------------------------------------------------------
# PostgreSQL
#
# The server comes from TASKER_TEST_PG_DSN (scripts/test.sh starts a throwaway one and sets it).
# Without it a local run skips the PostgreSQL tests; on CI, or when the variable is set but the
# server does not answer, they fail, so a broken setup can never pass as "all skipped".
# psycopg is imported inside functions: a SQLite-only run must not need the driver.
# --------------------------------------------------------------------------------------------------

PG_DSN_ENV = "TASKER_TEST_PG_DSN"
PG_CONNECT_TIMEOUT_S = 5
PG_SKIP_REASON = "PostgreSQL not available: set TASKER_TEST_PG_DSN or run scripts/test.sh"

_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def must_fail_without_pg(env: Mapping[str, str]) -> bool:
    """Whether an unreachable PostgreSQL fails the tests (True) rather than skips them.

    Args:
        env: the process environment.

    Returns:
        True on CI (``CI`` set to anything but a false word) or when ``TASKER_TEST_PG_DSN`` is set.
    """
    on_ci = env.get("CI", "").strip().lower() not in _FALSE_WORDS
    return on_ci or bool(env.get(PG_DSN_ENV))


def pg_connect_problem(dsn: str) -> str | None:
    """Try to connect to ``dsn``; return what went wrong, or None if the server answered."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(dsn, connect_timeout=PG_CONNECT_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()}"
    return None


def dsn_with_dbname(dsn: str, dbname: str) -> str:
    """Return ``dsn`` (URL or key=value form) as a ``postgresql://`` URL naming ``dbname``."""
    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    params.pop("dbname", None)
    user, password = params.pop("user", ""), params.pop("password", "")
    host, port = params.pop("host", ""), params.pop("port", "")
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc = (auth + "@" if auth else "") + quote(host, safe="") + (":" + port if port else "")
    query = "?" + urlencode(params) if params else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


def _redacted(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the test PostgreSQL server (an admin connection to its ``postgres`` database)."""
    dsn = os.environ.get(PG_DSN_ENV, "")
    if dsn:
        problem = pg_connect_problem(dsn)
        if problem is None:
            return dsn
        reason = f"PostgreSQL at {PG_DSN_ENV}={_redacted(dsn)} did not answer: {problem}"
    else:
        reason = f"{PG_DSN_ENV} is not set"
    if must_fail_without_pg(os.environ):
        pytest.fail(
            f"{reason}. On CI, or with {PG_DSN_ENV} set, the PostgreSQL tests must run: start a"
            " server with `bash scripts/test.sh`"
            ' (or `eval "$(bash scripts/pg-cluster.sh start)"`).',
            pytrace=False,
        )
    pytest.skip(PG_SKIP_REASON)


class PgDatabaseFactory:
    """Creates uniquely named databases on the test server, clones templates, drops what it made.

    Every database it creates is dropped at the end of the session at the latest, so a failing test
    leaves nothing behind on a long-lived server.
    """

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._created: list[str] = []
        self._templates: dict[str, str] = {}

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.admin_dsn, connect_timeout=PG_CONNECT_TIMEOUT_S, autocommit=True
            )
        return self._conn

    def dsn(self, dbname: str) -> str:
        """DSN (``postgresql://`` URL) of database ``dbname`` on the test server."""
        return dsn_with_dbname(self.admin_dsn, dbname)

    def create(self, template: str | None = None, prefix: str = "tasker_test") -> str:
        """Create an empty database, or a copy of ``template``; return its name."""
        from psycopg import sql

        admin = self._admin()
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        if admin.info.server_version >= 150000:
            # PostgreSQL 15 copies through the WAL by default: about 8x slower for a small database.
            stmt = sql.SQL("{} STRATEGY FILE_COPY").format(stmt)
        admin.execute(stmt)
        self._created.append(name)
        return name

    def drop(self, name: str) -> None:
        """Drop database ``name``, disconnecting whoever is still connected to it."""
        from psycopg import sql

        self._admin().execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if name in self._created:
            self._created.remove(name)

    def exists(self, name: str) -> bool:
        """Whether database ``name`` exists on the server."""
        row = self._admin().execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return row.fetchone() is not None

    @contextmanager
    def database(self, template: str | None = None) -> Iterator[str]:
        """Create a database (see ``create``), yield its DSN, and drop it on exit."""
        name = self.create(template)
        try:
            yield self.dsn(name)
        finally:
            self.drop(name)

    def make_template(self, name: str, setup: Callable[[str], None]) -> str:
        """Build a template database once per session; return its name, for ``create(template=)``.

        Args:
            name: a short label, lower-case letters, digits and ``_`` (``"schema"``). Calling
                again with the same label returns the same template without running ``setup``.
            setup: called with the new database's DSN to fill it (apply the schema, say). It must
                close its connections; any left open are terminated before the first clone.

        Returns:
            The template database's name.
        """
        from psycopg import sql

        if name in self._templates:
            return self._templates[name]
        if not re.fullmatch(r"[a-z0-9_]{1,30}", name):
            raise ValueError(f"template label {name!r}: use 1-30 of a-z, 0-9 and _")
        dbname = self.create(prefix=f"tasker_tpl_{name}")
        setup(self.dsn(dbname))
        # Nobody may connect to a template while it is being copied: lock it and end stragglers.
        admin = self._admin()
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(dbname))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        )
        self._templates[name] = dbname
        return dbname

    def close(self) -> None:
        """Drop every database this factory created and still holds, then disconnect."""
        try:
            for name in reversed(self._created[:]):
                self.drop(name)
        finally:
            if self._conn is not None:
                self._conn.close()


@pytest.fixture(scope="session")
def pg_database_factory(pg_dsn: str) -> Iterator[PgDatabaseFactory]:
    """Session-wide ``PgDatabaseFactory`` on the test server."""
    factory = PgDatabaseFactory(pg_dsn)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def pg_template() -> str | None:
    """Template that ``fresh_pg_dsn`` copies; None means an empty database.

    Override it in a conftest to start every test from a prepared database, for example::

        @pytest.fixture(scope="session")
        def pg_template(pg_database_factory):
            return pg_database_factory.make_template("schema", apply_schema)
    """
    return None


@pytest.fixture
def fresh_pg_dsn(pg_database_factory: PgDatabaseFactory, pg_template: str | None) -> Iterator[str]:
    """DSN of a new database for this test alone (a copy of ``pg_template``), dropped afterwards."""
    with pg_database_factory.database(template=pg_template) as dsn:
        yield dsn


# --------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Store URL of a new, empty store for this test, once per backend.

    SQLite is a file in ``tmp_path``; PostgreSQL is a ``fresh_pg_dsn`` database, requested only
    for that parameter so that ``-m "not postgres"`` runs need no server.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tasker.db"
    dsn: str = request.getfixturevalue("fresh_pg_dsn")
    return dsn
