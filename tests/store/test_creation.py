"""What creating a task writes, on every backend: the rows and transition rows its first
orchestration pass would have written (states.md §3.1), although creation now inserts the task
already started and its root steps already enqueued (docs/decisions/0011)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasker.domain.model import TaskRequest
from tasker.errors import DuplicateTask
from tasker.orchestration.creation import create_task, create_tasks
from tasker.orchestration.templates import TemplateCache
from tasker.store import Store
from tasker.templates import load_template_text

NOW = datetime(2026, 1, 6, 12, 0, 0, tzinfo=UTC)
STAMP = NOW.isoformat()
DIAMOND = """
name: diamond
namespace_name: make
version: "1.0.0"
steps:
  - {name: a, handler: {callable: make.step}}
  - {name: b, dependencies: [a], handler: {callable: make.step, initialization: {k: 1}}}
  - {name: c, dependencies: [a], handler: {callable: make.step}}
  - {name: d, dependencies: [b, c], handler: {callable: make.step}}
  - {name: e, handler: {callable: make.step}}
"""
EMPTY = """
name: empty
namespace_name: make
version: "1.0.0"
steps: []
"""


@pytest.fixture
def templates(store: Store) -> TemplateCache:
    cache = TemplateCache("test")
    with store.transaction() as tx:
        cache.register(tx, load_template_text(DIAMOND, "diamond.yaml"))
        cache.register(tx, load_template_text(EMPTY, "empty.yaml"))
    return cache


def test_a_new_task_is_started_and_its_roots_enqueued_with_every_transition_row(
    store: Store, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="diamond", namespace="make"), NOW)
        wake = tx.wake_count()
    with store.read() as tx:
        task = tx.get_task(created.task_uuid)
        task_trail = tx.task_transitions(created.task_uuid)
        steps = {s.name: s for s in tx.task_steps(created.task_uuid)}
        step_trails = {
            name: [
                (t.from_state, t.to_state, t.event, t.sort_key, t.most_recent, t.metadata)
                for t in tx.step_transitions(s.workflow_step_uuid)
            ]
            for name, s in steps.items()
        }
        edges = set(tx.task_edges(created.task_uuid))
        ready, counts = tx.step_overview(created.task_uuid, NOW)

    assert task is not None
    assert (created.state.value, task.state.value, task.complete) == (
        "steps_in_process",
        "steps_in_process",
        False,
    )
    roots = [steps["a"].workflow_step_uuid, steps["e"].workflow_step_uuid]
    assert [
        (t.from_state, t.to_state, t.event, t.sort_key, t.most_recent, t.metadata)
        for t in task_trail
    ] == [
        (
            None,
            "pending",
            "initial",
            1,
            False,
            {
                "event": "initial",
                "timestamp": STAMP,
                "initial_state": "pending",
                "from_service": "task_initializer",
            },
        ),
        ("pending", "initializing", "start", 2, False, {"event": "start", "timestamp": STAMP}),
        (
            "initializing",
            "enqueuing_steps",
            "ready_steps_found",
            3,
            False,
            {"event": "ready_steps_found", "timestamp": STAMP},
        ),
        (
            "enqueuing_steps",
            "steps_in_process",
            "steps_enqueued",
            4,
            True,
            {"event": "steps_enqueued", "timestamp": STAMP, "step_uuids": roots},
        ),
    ]
    assert all(t.created_at == NOW for t in task_trail)
    initial = (None, "pending", "initial", 1)
    for name in "ae":
        assert step_trails[name] == [
            (*initial, False, {"event": "initial", "timestamp": STAMP}),
            ("pending", "enqueued", "enqueue", 2, True, {"event": "enqueue", "timestamp": STAMP}),
        ], name
        assert steps[name].state.value == "enqueued"
    for name in "bcd":
        assert step_trails[name] == [(*initial, True, {"event": "initial", "timestamp": STAMP})]
        assert steps[name].state.value == "pending"
    assert list(steps) == ["a", "b", "c", "d", "e"]  # created order
    assert (steps["b"].inputs, steps["a"].inputs) == ({"k": 1}, None)
    assert edges == {
        ("a", "b", "provides"),
        ("a", "c", "provides"),
        ("b", "d", "provides"),
        ("c", "d", "provides"),
    }
    assert ready == []
    assert {s.value: n for s, n in counts.items()} == {"enqueued": 2, "pending": 3}
    assert wake == 2


def test_a_task_without_steps_is_created_complete_and_settled(
    store: Store, templates: TemplateCache
) -> None:
    with store.transaction() as tx:
        created = create_task(tx, templates, TaskRequest(name="empty", namespace="make"), NOW)
        settled = set(tx.settled_tasks)
    with store.read() as tx:
        task = tx.get_task(created.task_uuid)
        trail = [
            (t.from_state, t.to_state, t.event) for t in tx.task_transitions(created.task_uuid)
        ]

    assert task is not None
    assert (task.state.value, task.complete, task.completed_at) == ("complete", True, NOW)
    assert trail == [
        (None, "pending", "initial"),
        ("pending", "initializing", "start"),
        ("initializing", "complete", "no_steps_found"),
    ]
    assert settled == {created.task_uuid}


def test_a_duplicate_writes_nothing_and_names_the_first_task(
    store: Store, templates: TemplateCache
) -> None:
    request = TaskRequest(name="diamond", namespace="make", context={"order": 7})
    with store.transaction() as tx:
        first = create_task(tx, templates, request, NOW)
    with store.read() as tx:
        before = tx.table_counts()
    with pytest.raises(DuplicateTask) as raised, store.transaction() as tx:
        create_task(tx, templates, request, NOW)
    with store.read() as tx:
        after = tx.table_counts()

    assert raised.value.task_uuid == first.task_uuid
    assert after == before


def _written(store: Store, task_uuid: str) -> tuple[object, ...]:
    """What a task's creation wrote, without the uuids and timestamps that differ per task."""
    with store.read() as tx:
        task = tx.get_task(task_uuid)
        assert task is not None
        steps = tx.task_steps(task_uuid)
        return (
            task.state.value,
            task.complete,
            [
                (t.from_state, t.to_state, t.event, t.sort_key)
                for t in tx.task_transitions(task_uuid)
            ],
            [(s.name, s.state.value, s.inputs) for s in steps],
            [
                [
                    (t.from_state, t.to_state, t.event)
                    for t in tx.step_transitions(s.workflow_step_uuid)
                ]
                for s in steps
            ],
            sorted(tx.task_edges(task_uuid)),
        )


def test_many_tasks_in_one_call_write_what_one_by_one_writes_in_a_few_statements(
    store: Store, templates: TemplateCache
) -> None:
    # 260 diamonds: more tasks (200) and more steps (500) than one statement takes.
    requests = [
        TaskRequest(name="diamond" if i % 10 else "empty", namespace="make", context={"i": i})
        for i in range(260)
    ]
    with store.transaction() as tx:
        single = create_task(tx, templates, TaskRequest(name="diamond", namespace="make"), NOW)
    before = store.stats.statements
    with store.transaction() as tx:
        created = create_tasks(tx, templates, requests, NOW)
        wake, settled = tx.wake_count(), set(tx.settled_tasks)
    statements = store.stats.statements - before

    with store.read() as tx:
        counts = tx.table_counts()
    assert [task.step_count for task in created] == [0 if i % 10 == 0 else 5 for i in range(260)]
    assert len({task.task_uuid for task in created}) == 260
    assert counts["tasks"] == 261
    assert counts["workflow_steps"] == 5 * 235
    expected = _written(store, single.task_uuid)
    for task in created:
        if task.step_count:
            assert _written(store, task.task_uuid) == expected
    assert settled == {task.task_uuid for task in created if task.step_count == 0}
    assert wake == 2 * 234
    # tasks: 2 statements (200 + 60), steps: 3 (1,170 rows), edges: 1; PostgreSQL adds its
    # BEGIN/COMMIT bookkeeping only.
    assert statements <= 8, statements


def test_a_duplicate_in_a_call_names_its_position_and_writes_nothing(
    store: Store, templates: TemplateCache
) -> None:
    requests = [TaskRequest(name="diamond", namespace="make", context={"i": i}) for i in (1, 2, 1)]
    with store.read() as tx:
        before = tx.table_counts()
    with (
        pytest.raises(DuplicateTask, match=r"^request 2: a task with the same identity"),
        store.transaction() as tx,
    ):
        create_tasks(tx, templates, requests, NOW)
    with store.read() as tx:
        assert tx.table_counts() == before
