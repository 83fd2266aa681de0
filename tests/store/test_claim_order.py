"""Which enqueued step a claim takes (docs/decisions/0016): the highest priority, then the
oldest task's, then the longest enqueued; on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasker.domain.model import Claim, TaskRequest
from tasker.orchestration.claims import claim_step_rows
from tasker.orchestration.creation import create_task
from tasker.orchestration.results import submit_result
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store
from tasker.templates import load_template_text

NOW = datetime(2026, 1, 6, 12, 0, 0, tzinfo=UTC)
PAIR = """
name: pair
namespace_name: order
version: "1.0.0"
steps:
  - {name: first, handler: {callable: order.step}}
  - {name: second, dependencies: [first], handler: {callable: order.step}}
"""


def claim_one(store: Store, now: datetime) -> tuple[Claim, str]:
    """Claim one step; returns its claim and its name."""
    with store.transaction() as tx:
        ((claim, step),) = claim_step_rows(
            tx, namespaces=None, limit=1, worker_id="w", lease_timeout_s=30.0, now=now
        )
    return claim, step.name


def test_a_claim_takes_priority_then_the_oldest_tasks_step_then_the_longest_enqueued(
    store: Store,
) -> None:
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, load_template_text(PAIR, "pair.yaml"))
    tasks = []
    for n, priority in ((1, 0), (2, 0), (3, 5)):  # created in this order
        with store.transaction() as tx:
            request = TaskRequest(
                name="pair", namespace="order", context={"n": n}, priority=priority
            )
            tasks.append(create_task(tx, templates, request, NOW).task_uuid)
    older, newer, urgent = tasks

    claim, name = claim_one(store, NOW)
    assert (claim.task_uuid, name) == (urgent, "first")  # the higher priority, though newest
    claim, name = claim_one(store, NOW)
    assert (claim.task_uuid, name) == (older, "first")
    # The older task's second step is enqueued 5 s after the newer task's first step...
    later = NOW + timedelta(seconds=5)
    with store.transaction() as tx:
        done = {"success": True, "result": {}, "metadata": {}}
        submit_result(tx, templates, claim, done, later, jitter=False)
    # ... and still goes before it: a backlog is worked oldest task first.
    claim, name = claim_one(store, later)
    assert (claim.task_uuid, name) == (older, "second")
    claim, name = claim_one(store, later)
    assert (claim.task_uuid, name) == (newer, "first")
