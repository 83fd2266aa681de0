"""What one step costs in SQL, pinned so that a change which adds statements to the hot path
fails here rather than only in the benchmarks (docs/performance.md).

A 4-step chain runs through the same calls a worker thread makes (claim, read the handler's
context, submit and claim the next step in one transaction), in one thread, so the count is
exact: no idle claims, no maintenance loop. The bounds leave some room over today's counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tasker.domain.model import Claim, TaskRequest
from tasker.domain.template import StepTemplate
from tasker.orchestration.claims import claim_step_rows
from tasker.orchestration.creation import create_task
from tasker.orchestration.results import submit_result
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store, Transaction
from tasker.templates import load_template_text
from tasker.worker.runner import build_task_sequence_step

NOW = datetime(2026, 1, 6, 12, 0, 0, tzinfo=UTC)
CHAIN = """
name: chain
namespace_name: cost
version: "1.0.0"
steps:
  - {name: s1, handler: {callable: cost.step}}
  - {name: s2, dependencies: [s1], handler: {callable: cost.step}}
  - {name: s3, dependencies: [s2], handler: {callable: cost.step}}
  - {name: s4, dependencies: [s3], handler: {callable: cost.step}}
"""
STEPS = 4
# Today 10.75 (PostgreSQL 10.25: its claim is one statement, its results one, with pg_notify);
# 12.75 before creation wrote its steps and edges
# in one statement each and inserted the task and its root steps already started, 16 before an
# orchestration pass wrote its task transitions in one UPDATE and a plain step's success was
# stored and completed in one, 33 when each state change took 3 statements. Less than one
# statement of slack: one more fails here.
MAX_STATEMENTS_PER_STEP = 11.5
# 6 commits for 4 steps: the creation, the first claim, 4 submits (each with the next claim).
MAX_COMMITS_PER_STEP = 1.5


def claim_and_read(tx: Transaction, templates: TemplateCache) -> tuple[Claim, StepTemplate] | None:
    """Claim a step and read its handler's context, as a worker thread does (which also
    keeps recently read task rows; not here, so every step reads its task)."""
    claims = claim_step_rows(
        tx, namespaces=None, limit=1, worker_id="w1", lease_timeout_s=30.0, now=NOW
    )
    if not claims:
        return None
    claim, step = claims[0]
    _, step_template = build_task_sequence_step(tx, templates, claim, step=step)
    return claim, step_template


def test_a_chain_step_costs_a_bounded_number_of_statements_and_one_commit(
    store: Store,
) -> None:
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, load_template_text(CHAIN, "chain.yaml"))
    statements, commits = store.stats.statements, store.stats.commits

    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="chain", namespace="cost"), NOW)
    with store.transaction() as tx:
        job = claim_and_read(tx, templates)
    ran = 0
    while job is not None:
        ran += 1
        claim, step_template = job
        document = {"success": True, "result": {"n": ran}, "metadata": {}}
        with store.transaction() as tx:
            submit_result(
                tx, templates, claim, document, NOW, jitter=False, step_template=step_template
            )
            job = claim_and_read(tx, templates)
    with store.read() as tx:
        task = tx.get_task(created.task_uuid)

    per_step = (store.stats.statements - statements - 1) / STEPS  # minus the final read
    commits_per_step = (store.stats.commits - commits) / STEPS
    assert ran == STEPS
    assert task is not None
    assert task.state.value == "complete"
    assert per_step <= MAX_STATEMENTS_PER_STEP, f"{per_step:.2f} statements per step"
    assert commits_per_step <= MAX_COMMITS_PER_STEP, f"{commits_per_step:.2f} commits per step"


FORK = """
name: fork
namespace_name: cost
version: "1.0.0"
steps:
  - {name: left, handler: {callable: cost.step}}
  - {name: right, handler: {callable: cost.step}}
"""


def test_a_transaction_wakes_one_worker_per_new_step_it_did_not_claim_itself(
    store: Store,
) -> None:
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, load_template_text(FORK, "fork.yaml"))
        quiet = tx.wake_count()
    with store.transaction() as tx:
        create_task(tx, templates, TaskRequest(name="fork", namespace="cost"), NOW)
        after_enqueue = tx.wake_count()
        claim_and_read(tx, templates)
        after_claim = tx.wake_count()
    with store.transaction() as tx:
        tx.wake_namespaces.add("cost")  # announced without counting steps
        uncounted = tx.wake_count()

    assert (quiet, after_enqueue, after_claim, uncounted) == (0, 2, 1, None)


def test_creating_a_task_is_one_statement_per_table_whatever_its_size(store: Store) -> None:
    """The task row (inserted after its first pass), all its steps (the roots enqueued) and
    all its edges (none in a fork): one statement each, plus the NOTIFY on PostgreSQL; one
    commit. It was 11 statements for the chain (12 on PostgreSQL)."""
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, load_template_text(CHAIN, "chain.yaml"))
        templates.register(tx, load_template_text(FORK, "fork.yaml"))
    notify = 1 if store.backend == "postgres" else 0
    for name, steps, expected in (("chain", 4, 3), ("fork", 2, 2)):
        statements, commits = store.stats.statements, store.stats.commits
        with store.transaction() as tx:
            created = create_task(tx, templates, TaskRequest(name=name, namespace="cost"), NOW)
        assert created.step_count == steps
        assert store.stats.statements - statements == expected + notify, name
        assert store.stats.commits - commits == 1
