"""Group commit of worker results (ADR 0007), on both backends.

The pool's ``_commit_group`` is driven directly with claimed steps, so what one group does is
exact: how many commits, which steps moved, what each waiting thread gets back.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tasker.domain.model import TaskRequest
from tasker.domain.states import StepState, TaskState
from tasker.orchestration.creation import create_task
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store
from tasker.templates import load_template_text
from tasker.worker.handlers import HandlerRegistry
from tasker.worker.runner import PoolSettings, WorkerPool, _Job, _now, _Result, _Submission

CHAIN = """
name: pair
namespace_name: group
version: "1.0.0"
steps:
  - {name: first, handler: {callable: group.step}}
  - {name: second, dependencies: [first], handler: {callable: group.step}}
"""
DIAMOND = """
name: diamond
namespace_name: group
version: "1.0.0"
steps:
  - {name: start, handler: {callable: group.step}}
  - {name: left, dependencies: [start], handler: {callable: group.step}}
  - {name: right, dependencies: [start], handler: {callable: group.step}}
  - {name: join, dependencies: [left, right], handler: {callable: group.step}}
"""

_SERIAL = itertools.count()


@pytest.fixture
def pool(store: Store) -> WorkerPool:
    templates = TemplateCache("test")
    with store.transaction() as tx:
        templates.register(tx, load_template_text(CHAIN, "pair.yaml"))
        templates.register(tx, load_template_text(DIAMOND, "diamond.yaml"))
    return WorkerPool(store, templates, HandlerRegistry(), PoolSettings(jitter=False))


def create(pool: WorkerPool, name: str) -> str:
    with pool.store.transaction() as tx:
        request = TaskRequest(name=name, namespace="group", context={"n": next(_SERIAL)})
        return create_task(tx, pool.templates, request, _now()).task_uuid


def claim(pool: WorkerPool, count: int) -> list[_Job]:
    with pool.store.transaction() as tx:
        jobs = pool._claim_jobs(tx, count)
    assert len(jobs) == count
    return jobs


def submission(job: _Job, result: Any = None, *, claim_next: bool = True) -> _Submission:
    document = {"success": True, "result": {"value": 1} if result is None else result}
    return _Submission([_Result(job.claim, document, None, job.step)], 1 if claim_next else 0)


def step_states(store: Store, task_uuid: str) -> dict[str, StepState]:
    with store.read() as tx:
        return {step.name: step.state for step in tx.task_steps(task_uuid)}


def test_a_group_records_every_result_in_one_commit_and_claims_each_thread_a_next_step(
    pool: WorkerPool,
) -> None:
    tasks = [create(pool, "pair") for _ in range(3)]
    group = [submission(job) for job in claim(pool, 3)]
    commits = pool.store.stats.commits

    pool._commit_group(group)

    assert pool.store.stats.commits == commits + 1
    for task_uuid in tasks:
        assert step_states(pool.store, task_uuid) == {
            "first": StepState.COMPLETE,
            "second": StepState.IN_PROGRESS,  # claimed in the group's transaction
        }
    assert [len(item.jobs) for item in group] == [1, 1, 1]
    assert {item.jobs[0].claim.task_uuid for item in group} == set(tasks)


def test_a_result_that_cannot_be_stored_does_not_lose_the_others_of_its_group(
    pool: WorkerPool,
) -> None:
    good_task, bad_task = create(pool, "pair"), create(pool, "pair")
    jobs = {job.claim.task_uuid: job for job in claim(pool, 2)}
    good = submission(jobs[good_task])
    bad = submission(jobs[bad_task], result={"value": object()})  # not JSON: the store raises

    pool._commit_group([good, bad])

    assert step_states(pool.store, good_task)["first"] is StepState.COMPLETE
    assert good.jobs == []  # the retry one result at a time claims nothing
    assert step_states(pool.store, bad_task)["first"] is StepState.IN_PROGRESS  # left to its lease
    assert bad.jobs == []


def test_a_group_evaluates_a_task_once_for_all_of_its_results(pool: WorkerPool) -> None:
    grouped, separate = create(pool, "diamond"), create(pool, "diamond")
    starts = {job.claim.task_uuid: job for job in claim(pool, 2)}
    pool._commit_group([submission(starts[grouped], claim_next=False)])
    pool._commit_group([submission(starts[separate], claim_next=False)])
    branches: dict[str, list[_Job]] = {grouped: [], separate: []}
    for job in claim(pool, 4):
        branches[job.claim.task_uuid].append(job)

    before = pool.store.stats.statements
    pool._commit_group([submission(j, result={}, claim_next=False) for j in branches[grouped]])
    grouped_cost = pool.store.stats.statements - before
    before = pool.store.stats.statements
    for job in branches[separate]:
        pool._commit_group([submission(job, result={}, claim_next=False)])
    separate_cost = pool.store.stats.statements - before

    for task_uuid in (grouped, separate):
        states = step_states(pool.store, task_uuid)
        assert (states["left"], states["right"]) == (StepState.COMPLETE, StepState.COMPLETE)
        assert states["join"] is StepState.ENQUEUED
        with pool.store.read() as tx:
            task = tx.get_task(task_uuid)
        assert task is not None
        assert task.state is TaskState.STEPS_IN_PROCESS
    # One task lock and one orchestration pass for the two results, not two of each.
    assert grouped_cost < separate_cost
