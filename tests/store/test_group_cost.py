"""What a worker's group of claims or results costs in SQL, on both backends.

A group of K claims or K results costs a number of statements that does not grow with K (the
rows of a group travel in one statement per kind of write or read), and it leaves exactly the
audit trail that claiming and recording the same steps one at a time leaves. The pool's
``_claim_jobs`` and ``_commit_group`` are driven directly, as in test_group_commit.py.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasker.domain.model import TaskRequest
from tasker.domain.states import StepState, TaskState
from tasker.orchestration.creation import create_task
from tasker.orchestration.results import ResultGroup, ResultOutcome
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store
from tasker.templates import load_template_text
from tasker.worker.handlers import HandlerRegistry
from tasker.worker.runner import PoolSettings, WorkerPool, _Job, _now, _Result, _Submission

TRIO = """
name: trio
namespace_name: sets
version: "1.0.0"
steps:
  - {name: a, handler: {callable: sets.step}}
  - {name: b, dependencies: [a], handler: {callable: sets.step}}
  - {name: c, dependencies: [b], handler: {callable: sets.step}}
"""
STAGES = 3  # a, b, c: every claim group and result group of a task's life


@pytest.fixture
def pool(store: Store) -> WorkerPool:
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, load_template_text(TRIO, "trio.yaml"))
    settings = PoolSettings(jitter=False, worker_id="worker-sets")
    return WorkerPool(store, templates, HandlerRegistry(), settings)


def create(pool: WorkerPool, label: str, count: int) -> dict[int, str]:
    """``count`` trio tasks, by their number."""
    created = {}
    for n in range(count):
        with pool.store.transaction() as tx:
            request = TaskRequest(name="trio", namespace="sets", context={"n": n, "set": label})
            created[n] = create_task(tx, pool.templates, request, _now()).task_uuid
    return created


def result_of(job: _Job) -> dict[str, Any]:
    n = job.tss["task"]["task"]["context"]["n"]
    return {"success": True, "result": {"n": n, "step": job.tss["workflow_step"]["name"]}}


def submission(job: _Job) -> _Submission:
    return _Submission([_Result(job.claim, result_of(job), None, job.step)], 0)


def claim(pool: WorkerPool, count: int) -> list[_Job]:
    with pool.store.transaction() as tx:
        jobs = pool._claim_jobs(tx, count)
    assert len(jobs) == count
    return jobs


def group_costs(pool: WorkerPool, k: int) -> list[tuple[int, int]]:
    """Claim K steps in one transaction and record their K results in one group, for each
    stage of K new tasks: statements of each claim group and each result group."""
    create(pool, f"k{k}", k)
    costs = []
    for _ in range(STAGES):
        pool._tasks.clear()  # every claim group reads its tasks' rows
        before = pool.store.stats.statements
        jobs = claim(pool, k)
        claimed = pool.store.stats.statements - before
        before = pool.store.stats.statements
        pool._commit_group([submission(job) for job in jobs])
        costs.append((claimed, pool.store.stats.statements - before))
    return costs


def test_a_group_of_claims_or_results_costs_the_same_statements_whatever_its_size(
    pool: WorkerPool,
) -> None:
    small, large = group_costs(pool, 4), group_costs(pool, 16)

    assert small == large, f"K=4: {small}, K=16: {large} (claims, results) per stage"
    with pool.store.read() as tx:
        states = {tx.get_task(u).state for u in tx.tasks_in_states(list(TaskState), _now(), 99)}
    assert states <= {TaskState.COMPLETE}


def trail(store: Store, task_uuid: str) -> dict[str, Any]:
    """The task's audit trail without what differs between two runs (ids, timestamps): its
    transitions, each step's transitions, results and result audit rows."""
    with store.read() as tx:
        steps = tx.task_steps(task_uuid)
        names = {step.workflow_step_uuid: step.name for step in steps}

        def plain(metadata: dict[str, Any]) -> dict[str, Any]:
            kept = {k: v for k, v in metadata.items() if k != "timestamp"}
            if "step_uuids" in kept:
                kept["step_uuids"] = [names[u] for u in kept["step_uuids"]]
            return kept

        def rows(transitions: list[Any]) -> list[tuple[Any, ...]]:
            return [
                (t.from_state, t.to_state, t.event, t.sort_key, t.most_recent, plain(t.metadata))
                for t in transitions
            ]

        return {
            "task": rows(tx.task_transitions(task_uuid)),
            "steps": {
                step.name: (
                    step.state,
                    step.attempts,
                    step.results,
                    rows(tx.step_transitions(step.workflow_step_uuid)),
                    [
                        (a["worker_uuid"], a["success"], a["attempt"], a["to_state"])
                        for a in tx.step_audit(task_uuid, step.workflow_step_uuid)
                    ],
                )
                for step in steps
            },
        }


def test_a_group_leaves_the_audit_trail_of_one_claim_and_one_result_at_a_time(
    pool: WorkerPool,
) -> None:
    count = 16
    ancestors_seen: dict[str, list[Any]] = {"serial": [], "grouped": []}
    serial = create(pool, "serial", count)
    for _ in range(STAGES * count):  # one claim, one result at a time (oldest task first)
        (job,) = claim(pool, 1)
        ancestors_seen["serial"].append(job.tss["dependency_results"])
        pool._commit_group([submission(job)])
    grouped = create(pool, "grouped", count)
    for _ in range(STAGES):  # every task's a, then every b, then every c: K = 16 each time
        jobs = claim(pool, count)
        ancestors_seen["grouped"].extend(job.tss["dependency_results"] for job in jobs)
        pool._commit_group([submission(job) for job in jobs])

    for n in range(count):
        alone, together = trail(pool.store, serial[n]), trail(pool.store, grouped[n])
        assert together == alone
        assert together["steps"]["c"][0] is StepState.COMPLETE
    # Each claim read its ancestors' results: none for a, a's for b, a's and b's for c.
    for seen in ancestors_seen.values():
        expected = [[]] * count + [["a"]] * count + [["a", "b"]] * count
        assert sorted(sorted(d) for d in seen) == sorted(expected)


def test_a_superseded_claim_in_a_group_refuses_its_own_result_only(pool: WorkerPool) -> None:
    create(pool, "mixed", 4)
    jobs = sorted(claim(pool, 4), key=lambda job: job.claim.task_uuid)
    stale = replace(jobs[1].claim, token="superseded")
    failure = {"success": False, "error": {"message": "boom", "retryable": True}}
    group = ResultGroup()
    with pool.store.transaction() as tx:
        for job, document, current in (
            (jobs[0], result_of(jobs[0]), jobs[0].claim),
            (jobs[1], result_of(jobs[1]), stale),
            (jobs[2], failure, jobs[2].claim),  # not a plain success: its own path
            (jobs[3], result_of(jobs[3]), jobs[3].claim),
        ):
            group.submit(pool.templates, current, document, _now(), step_template=job.step)
        outcomes = group.finish(tx, _now())

    applied, refused = ResultOutcome.APPLIED, ResultOutcome.REFUSED
    assert outcomes == [applied, refused, applied, applied]
    with pool.store.read() as tx:
        a_states = []
        for job in jobs:
            steps = {step.name: step for step in tx.task_steps(job.claim.task_uuid)}
            audits = tx.step_audit(job.claim.task_uuid, job.claim.step_uuid)
            a_states.append((steps["a"].state, steps["b"].state, len(audits)))
            if job is not jobs[1]:
                assert steps["a"].results is not None
                assert steps["a"].results.get("success") is (job is not jobs[2])
    assert a_states == [
        (StepState.COMPLETE, StepState.ENQUEUED, 1),
        (StepState.IN_PROGRESS, StepState.PENDING, 0),  # left to its lease, nothing written
        (StepState.WAITING_FOR_RETRY, StepState.PENDING, 1),
        (StepState.COMPLETE, StepState.ENQUEUED, 1),
    ]


DIAMOND = """
name: diamond
namespace_name: sets
version: "1.0.0"
steps:
  - {name: start, handler: {callable: sets.step}}
  - {name: left, dependencies: [start], handler: {callable: sets.step}}
  - {name: right, dependencies: [start], handler: {callable: sets.step}}
  - {name: join, dependencies: [left, right], handler: {callable: sets.step}}
"""
DIAMOND_STEPS = ("start", "left", "right", "join")
_RUNS = itertools.count()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plans=st.lists(
        st.fixed_dictionaries({name: st.booleans() for name in DIAMOND_STEPS}),
        min_size=1,
        max_size=4,
    )
)
def test_one_group_for_several_tasks_leaves_the_trail_of_one_group_per_task(
    pool: WorkerPool, plans: list[dict[str, bool]]
) -> None:
    """Each task's results reach the same groups' passes either way (all of a round's results
    of a task are in one group), so only the batching of the tasks' reads and writes differs:
    the trails must not. ``plans`` says which step of which task succeeds (else it fails for
    good, which blocks the task and gives it up once nothing is in flight)."""
    with pool.store.transaction() as tx:
        pool.templates.register(tx, load_template_text(DIAMOND, "diamond.yaml"))
    run = next(_RUNS)
    sets: dict[str, dict[int, str]] = {}
    for label in ("together", "apart"):
        sets[label] = {}
        for n in range(len(plans)):
            with pool.store.transaction() as tx:
                context = {"n": n, "set": label, "run": run}
                request = TaskRequest(name="diamond", namespace="sets", context=context)
                sets[label][n] = create_task(tx, pool.templates, request, _now()).task_uuid
    label_of = {u: label for label, tasks in sets.items() for u in tasks.values()}

    def outcome(job: _Job) -> _Submission:
        n, name = job.tss["task"]["task"]["context"]["n"], job.tss["workflow_step"]["name"]
        document: dict[str, Any] = (
            result_of(job)
            if plans[n][name]
            else {"success": False, "error": {"message": "no", "retryable": False}}
        )
        return _Submission([_Result(job.claim, document, None, job.step)], 0)

    while True:
        with pool.store.transaction() as tx:
            jobs = [j for j in pool._claim_jobs(tx, 64) if j.claim.task_uuid in label_of]
        if not jobs:
            break
        pool._commit_group([outcome(j) for j in jobs if label_of[j.claim.task_uuid] == "together"])
        for task_uuid in sets["apart"].values():
            mine = [outcome(j) for j in jobs if j.claim.task_uuid == task_uuid]
            if mine:
                pool._commit_group(mine)

    for n in range(len(plans)):
        together, apart = (
            trail(pool.store, sets["together"][n]),
            trail(pool.store, sets["apart"][n]),
        )
        assert together == apart
        last = together["task"][-1][1]
        assert last in ("complete", "error")
        assert (last == "complete") is all(plans[n].values())
