"""The plans the PostgreSQL store's statements get, on a young database and a grown one (ADR 0024).

A connection plans each prepared statement once, generically, and keeps that plan until the
tables' statistics change. Planned while the tables hold a few rows, a statement that looks a
row up by key could otherwise scan a table whole, or every task in a state, for the
connection's life: each scan longer as the tables grow. Every statement of ``queries.sql`` and
``queries_batch.sql`` is planned here the way the store plans it, on its own connection's
settings, with a few tasks written and with many.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tasker.store.postgres as postgres_store
from tasker.domain.model import TaskRequest
from tasker.orchestration.creation import create_tasks
from tasker.orchestration.templates import TemplateCache
from tasker.store.postgres import PostgresStore
from tasker.store.postgres.transaction import to_psycopg_placeholders
from tasker.store.queries import load_queries
from tasker.templates import load_template_text
from tests.conftest import PgDatabaseFactory

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
DIAMOND = load_template_text(
    """
name: diamond
namespace_name: plans
version: "1.0.0"
steps:
  - {name: top, handler: {callable: plans.step}}
  - {name: left, dependencies: [top], handler: {callable: plans.step}}
  - {name: right, dependencies: [top], handler: {callable: plans.step}}
  - {name: bottom, dependencies: [left, right], handler: {callable: plans.step}}
""",
    "diamond.yaml",
)
QUERY_FILES = ("queries.sql", "queries_batch.sql")
# Completed in code (one VALUES row per task or step): nothing to scan, nothing to plan here.
BUILT_IN_CODE = {"insert_tasks", "insert_steps"}
# Parameters whose type PostgreSQL cannot infer from the text (psycopg sends them typed).
PARAMETER_TYPES = {"expected": "bigint", "items_processed": "integer", "limit": "bigint"}
# The statements that read a queue (every task in some states, every running or retrying
# step): the only ones for which the state, lease and retry indexes are the right path.
QUEUE_READS = {"due_retry_tasks", "expired_leases", "tasks_in_states"}
QUEUE_INDEXES = ("tasks_state_idx", "workflow_steps_lease_idx", "workflow_steps_retry_idx")
# Read whole on purpose: the claimable queue, in claim order, up to the claim's LIMIT.
READ_IN_ORDER = {"workflow_steps_claim_idx"}
# Statements that return (or count) every row by design.
EVERY_ROW = {"list_named_tasks", "table_counts"}
_SCAN = re.compile(r"(?:Index Scan|Index Only Scan) using (\w+)|Bitmap Index Scan on (\w+)")


def whole_index_scans(plan: str, leading: Mapping[str, str]) -> list[str]:
    """Indexes the plan reads without a condition on their first column: a sequential scan by
    another name, and what a plan picks in its place when sequential scans are off.
    ``leading`` maps each index to its first column."""
    lines = plan.splitlines()
    whole = []
    for number, line in enumerate(lines):
        match = _SCAN.search(line)
        if match is None:
            continue
        index = match.group(1) or match.group(2)
        depth = len(line) - len(line.lstrip())
        conditions = []
        for below in lines[number + 1 :]:
            if "->" in below or len(below) - len(below.lstrip()) <= depth:
                break
            if "Index Cond" in below:
                conditions.append(below)
        bounded = re.compile(rf"\(+{leading[index]} ")
        if not any(bounded.search(condition) for condition in conditions):
            whole.append(index)
    return [index for index in whole if index not in READ_IN_ORDER]


def statements() -> list[tuple[str, str]]:
    folder = Path(postgres_store.__file__).parent
    return [
        (name, sql)
        for file in QUERY_FILES
        for name, sql in load_queries(folder / file).items()
        if name not in BUILT_IN_CODE
    ]


def positional(sql: str) -> tuple[str, list[str]]:
    """``:name`` parameters as ``$n`` (PREPARE's form), and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = re.sub(r"%\((\w+)\)s", number, to_psycopg_placeholders(sql))
    return text.replace("%%", "%"), names


def populated(dsn: str, tasks: int, analyze: bool) -> PostgresStore:
    store = PostgresStore(dsn)
    templates = TemplateCache("plans")
    with store.transaction() as tx:
        templates.register(tx, DIAMOND)
    requests = [
        TaskRequest(name="diamond", namespace="plans", context={"n": n}) for n in range(tasks)
    ]
    with store.transaction() as tx:
        create_tasks(tx, templates, requests, NOW)
    if analyze:
        with store.transaction() as tx:
            tx.execute("ANALYZE")
    return store


@pytest.fixture(scope="module", params=["young", "grown"])
def planned_store(
    request: pytest.FixtureRequest, pg_database_factory: PgDatabaseFactory
) -> Iterator[PostgresStore]:
    """A database the size at which a new deployment plans (three tasks, no statistics), or one
    that has grown and been analyzed (2,000 tasks), where the planner trusts its estimates."""
    grown = request.param == "grown"
    with pg_database_factory.database() as dsn:
        store = populated(dsn, 2000 if grown else 3, analyze=grown)
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(scope="module")
def leading_columns(planned_store: PostgresStore) -> dict[str, str]:
    with planned_store.read() as tx:
        rows = tx.execute(
            "SELECT i.indexrelid::regclass::text AS index, a.attname AS leading"
            " FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        ).fetchall()
    return {row["index"]: row["leading"] for row in rows}


def generic_plan(store: PostgresStore, sql: str) -> str:
    text, names = positional(sql)
    types = ", ".join(PARAMETER_TYPES.get(name, "unknown") for name in names)
    with store.transaction() as tx:
        signature = f" ({types})" if names else ""
        tx.execute(f"PREPARE plan_check{signature} AS {text}")
        arguments = f"({', '.join(['NULL'] * len(names))})" if names else ""
        rows = tx.execute(f"EXPLAIN EXECUTE plan_check{arguments}").fetchall()
        tx.execute("DEALLOCATE plan_check")
    return "\n".join(row["QUERY PLAN"] for row in rows)


@pytest.mark.parametrize(("name", "sql"), statements(), ids=[name for name, _ in statements()])
def test_no_statement_scans_more_than_its_rows(
    planned_store: PostgresStore, leading_columns: dict[str, str], name: str, sql: str
) -> None:
    plan = generic_plan(planned_store, sql)

    assert "Seq Scan" not in plan, f"{name} scans a table whole:\n{plan}"
    assert "JIT" not in plan, f"{name} would be compiled at every run:\n{plan}"
    if name not in EVERY_ROW:
        whole = whole_index_scans(plan, leading_columns)
        assert not whole, f"{name} reads an index whole ({whole}):\n{plan}"
    if name not in QUEUE_READS:
        used = [index for index in QUEUE_INDEXES if index in plan]
        assert not used, f"{name} reads a queue index ({used}) to find rows by key:\n{plan}"
