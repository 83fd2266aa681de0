"""``Tasker.submit_many``: many tasks in one transaction, all of them or none (execution.md
§2, R6.3; docs/decisions/0013), on every backend."""

from __future__ import annotations

import pytest

from tasker.domain.model import TaskRequest
from tasker.errors import DuplicateTask, InvalidContext, TemplateNotFound
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import WAIT_S, MakeTasker, table_counts


def chain(recorder: Recorder, seed: int, idempotency_key: str | None = None) -> TaskRequest:
    return TaskRequest(
        name="linear_chain",
        namespace="engine",
        context=recorder.context(seed=seed),
        idempotency_key=idempotency_key,
    )


def test_every_task_is_created_in_order_and_runs_to_completion(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain")

    created = app.submit_many(chain(recorder, seed) for seed in (2, 3, 4))

    views = [app.wait(task_uuid, WAIT_S) for task_uuid in created]
    assert len(set(created)) == 3
    assert [view.state for view in views] == ["complete"] * 3
    # Each uuid is the task of the request at its position: seed s ends at s ** 16.
    assert [view.steps["fourth"].result["value"] for view in views] == [2**16, 3**16, 4**16]
    assert table_counts(app)["tasks"] == 3


def test_an_invalid_request_writes_none_of_the_batch(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain", "schema_checked", start=False)
    before = table_counts(app)
    bad = TaskRequest(name="schema_checked", namespace="engine", context={"order_id": 0})

    with pytest.raises(InvalidContext) as raised:
        app.submit_many([chain(recorder, 2), chain(recorder, 3), bad, chain(recorder, 4)])

    assert str(raised.value).startswith("request 2: context does not match the input_schema")
    assert table_counts(app) == before


def test_an_unknown_template_names_its_request(make_tasker: MakeTasker, recorder: Recorder) -> None:
    app = make_tasker("linear_chain", start=False)
    before = table_counts(app)
    missing = TaskRequest(name="no_such_template", namespace="engine", context={})

    with pytest.raises(TemplateNotFound, match=r"^request 1: "):
        app.submit_many([chain(recorder, 2), missing])

    assert table_counts(app) == before


def test_a_request_repeating_an_earlier_one_is_a_duplicate_and_nothing_is_written(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain", start=False)
    before = table_counts(app)

    with pytest.raises(DuplicateTask) as raised:
        app.submit_many([chain(recorder, 2), chain(recorder, 3), chain(recorder, 2)])

    assert str(raised.value).startswith("request 2: a task with the same identity")
    # The task it duplicated was rolled back with the rest: nothing is left to point at.
    assert table_counts(app) == before


def test_a_request_repeating_an_existing_task_names_it(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("linear_chain", start=False)
    first = app.submit(chain(recorder, 2, idempotency_key="order-7"))
    before = table_counts(app)

    with pytest.raises(DuplicateTask) as raised:
        app.submit_many([chain(recorder, 3), chain(recorder, 5, idempotency_key="order-7")])

    assert raised.value.task_uuid == first
    assert str(raised.value).startswith("request 1: ")
    assert table_counts(app) == before


def test_an_empty_batch_creates_nothing(make_tasker: MakeTasker) -> None:
    app = make_tasker("linear_chain", start=False)
    before = table_counts(app)

    assert app.submit_many([]) == []
    assert table_counts(app) == before
