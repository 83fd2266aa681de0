"""What the PostgreSQL store does to keep a step's transaction short: the claim and its
handler's ancestor results in one statement, and statements nobody reads held back until the
next one that is read (docs/performance.md). Outcomes are compared with the plain reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tasker.domain.model import Claim, StepRecord, TaskRequest
from tasker.domain.states import StepState
from tasker.orchestration.creation import create_task
from tasker.orchestration.steps import ResultOutcome, claim_step_rows, submit_result
from tasker.orchestration.templates import TemplateCache
from tasker.store.postgres import PostgresStore
from tasker.store.sql import SqlTransaction
from tasker.templates import load_template_text

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
DIAMOND = """
name: diamond
namespace_name: hot
version: "1.0.0"
steps:
  - {name: top, handler: {callable: hot.step}}
  - {name: left, dependencies: [top], handler: {callable: hot.step}}
  - {name: right, dependencies: [top], handler: {callable: hot.step}}
  - {name: bottom, dependencies: [left, right], handler: {callable: hot.step}}
"""


@pytest.fixture
def store(fresh_pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(fresh_pg_dsn)
    try:
        yield opened
    finally:
        opened.close()


TEMPLATE = load_template_text(DIAMOND, "diamond.yaml")


@pytest.fixture
def templates(store: PostgresStore) -> TemplateCache:
    cache = TemplateCache("test")
    with store.transaction() as tx:
        cache.register(tx, TEMPLATE)
    return cache


def claim(
    tx: SqlTransaction, limit: int, namespaces: list[str] | None = None
) -> list[tuple[Claim, StepRecord]]:
    return claim_step_rows(
        tx, namespaces=namespaces, limit=limit, worker_id="w1", lease_timeout_s=30.0, now=NOW
    )


def succeed(
    store: PostgresStore, templates: TemplateCache, claimed: tuple[Claim, StepRecord]
) -> None:
    claim, step = claimed
    document = {"success": True, "result": {"name": step.name}, "metadata": {}}
    with store.transaction() as tx:
        outcome = submit_result(
            tx,
            templates,
            claim,
            document,
            NOW,
            jitter=False,
            step_template=TEMPLATE.step(step.template_step_name),
        )
    assert outcome is ResultOutcome.APPLIED


def test_one_statement_claims_several_steps_each_under_its_own_token_with_its_ancestors(
    store: PostgresStore, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="diamond", namespace="hot"), NOW)
    with store.transaction() as tx:
        (top,) = claim(tx, 4)
    succeed(store, templates, top)

    with store.transaction() as tx:
        assert claim(tx, 4, ["elsewhere"]) == []
        before = store.stats.statements
        middle = claim(tx, 4, ["hot"])
        claimed_in = store.stats.statements - before
        before = store.stats.statements
        prefetched = tx.ancestor_results_of([c.step_uuid for c, _ in middle])
        read_for_ancestors = store.stats.statements - before

    assert (claimed_in, read_for_ancestors) == (1, 0)
    assert sorted(step.name for _, step in middle) == ["left", "right"]
    assert len({c.token for c, _ in middle}) == 2
    with store.read() as tx:
        for c, step in middle:
            assert (c.attempts_before, step.attempts, step.state) == (0, 1, StepState.IN_PROGRESS)
            row = tx.get_step(c.step_uuid)
            assert row is not None
            assert (row.state, row.attempts) == (StepState.IN_PROGRESS, 1)
            assert [(t.from_state, t.to_state) for t in tx.step_transitions(c.step_uuid)] == [
                (None, "pending"),
                ("pending", "enqueued"),
                ("enqueued", "in_progress"),
            ]
            assert list(prefetched[c.step_uuid]) == ["top"]
            assert prefetched[c.step_uuid] == SqlTransaction.ancestor_results(tx, c.step_uuid)

    for claimed in middle:
        succeed(store, templates, claimed)
    with store.transaction() as tx:
        ((_, bottom),) = claim(tx, 4)
        ancestors = tx.ancestor_results(bottom.workflow_step_uuid)
    with store.read() as tx:
        assert ancestors == SqlTransaction.ancestor_results(tx, bottom.workflow_step_uuid)
    assert list(ancestors) == ["top", "left", "right"]
    assert ancestors["left"]["result"] == {"name": "left"}


def test_a_claim_skips_steps_another_transaction_holds_and_takes_the_next(
    store: PostgresStore, templates: TemplateCache
) -> None:
    for n in range(3):
        with store.transaction() as tx:
            create_task(
                tx, templates, TaskRequest(name="diamond", namespace="hot", context={"n": n}), NOW
            )
    with store.transaction() as holder:
        held = claim(holder, 1)
        with store.transaction() as other:
            taken = claim(other, 4)

    assert len(held) == 1
    assert len(taken) == 2
    assert held[0][0].step_uuid not in {c.step_uuid for c, _ in taken}
