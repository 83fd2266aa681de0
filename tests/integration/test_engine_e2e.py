"""The engine end to end, on every backend: workflow shapes, retries, timeouts, racing parents.

Each test runs real tasks on a real store with worker threads; handlers
(tests/fixtures/handlers/engine_handlers.py) report what they did to the test's recorder.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tasker.templates import load_template_file
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import (
    MakeTasker,
    audit_rows,
    dlq_rows,
    rows,
    run_task,
    step_trail,
    table_counts,
    template_path,
)

# -- helpers -------------------------------------------------------------------------------------


def parents_of(template_name: str) -> dict[str, list[str]]:
    """Each step of an engine template and its direct dependencies."""
    template = load_template_file(template_path(template_name))
    return {step.name: list(step.dependencies) for step in template.steps}


def ancestors_of(parents: dict[str, list[str]], step: str) -> list[str]:
    seen: set[str] = set()
    todo = list(parents[step])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(parents[name])
    return sorted(seen)


def assert_each_step_ran_once_after_its_parents(
    recorder: Recorder, task_uuid: str, parents: dict[str, list[str]]
) -> None:
    marks = recorder.marks_of(task_uuid)
    position = {}
    for step in parents:
        starts = [i for i, m in enumerate(marks) if m.step == step and m.kind == "start"]
        finishes = [i for i, m in enumerate(marks) if m.step == step and m.kind == "finish"]
        assert len(starts) == 1, f"{step} started {len(starts)} times"
        assert len(finishes) == 1, f"{step} finished {len(finishes)} times"
        position[step] = (starts[0], finishes[0])
    for step, deps in parents.items():
        for parent in deps:
            assert position[step][0] > position[parent][1], (
                f"{step} started before its parent {parent} finished"
            )


def error_of(view: Any, step: str) -> dict[str, Any]:
    error = view.steps[step].error
    assert isinstance(error, dict), f"step {step} has no error: {view.steps[step]}"
    return error


def backoffs(app: Any, step_uuid: str) -> list[float]:
    """The backoff the orchestrator scheduled after each failed attempt."""
    return [
        t.metadata["backoff_seconds"]
        for t in step_trail(app, step_uuid)
        if t.to_state == "waiting_for_retry"
    ]


def gaps(recorder: Recorder, task_uuid: str, step: str) -> list[float]:
    """Seconds from the end of each attempt to the start of the next."""
    starts = recorder.marks_of(task_uuid, step, "start")
    finishes = recorder.marks_of(task_uuid, step, "finish")
    return [nxt.at - done.at for done, nxt in zip(finishes, starts[1:], strict=False)]


# -- shapes --------------------------------------------------------------------------------------

MIXED_DAG_VALUES = {"r1": 1, "r2": 1, "m1": 2, "m2": 1, "m3": 3, "m4": 3, "s1": 7, "s2": 3}


def node_results(template: str, values: dict[str, int]) -> dict[str, Any]:
    parents = parents_of(template)
    return {
        step: {"value": values[step], "ancestors": ancestors_of(parents, step)} for step in parents
    }


SHAPES = [
    pytest.param(
        "linear_chain",
        {"seed": 2},
        {
            "first": {"value": 4},
            "second": {"value": 16},
            "third": {"value": 256},
            "fourth": {"value": 65536},
        },
        id="linear_chain",
    ),
    pytest.param(
        "diamond",
        {"seed": 3},
        {
            "start": {"value": 9},
            "left": {"value": 10},
            "right": {"value": 18},
            "join": {"value": 180},
        },
        id="diamond",
    ),
    pytest.param(
        "tree",
        {},
        node_results("tree", dict.fromkeys(parents_of("tree"), 1)),
        id="tree",
    ),
    pytest.param("mixed_dag", {}, node_results("mixed_dag", MIXED_DAG_VALUES), id="mixed_dag"),
]


@pytest.mark.parametrize(("template", "inputs", "expected"), SHAPES)
def test_workflow_completes_with_every_step_run_once_after_its_parents(
    make_tasker: MakeTasker,
    recorder: Recorder,
    template: str,
    inputs: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    app = make_tasker(template)

    view = run_task(app, template, recorder.context(**inputs))

    assert view.state == "complete"
    assert {name: step.result for name, step in view.steps.items()} == expected
    assert {
        name: (step.state, step.attempts) for name, step in view.steps.items()
    } == dict.fromkeys(expected, ("complete", 1))
    assert all(step.error is None for step in view.steps.values())
    assert_each_step_ran_once_after_its_parents(recorder, view.task_uuid, parents_of(template))


def test_tree_runs_siblings_side_by_side(make_tasker: MakeTasker, recorder: Recorder) -> None:
    app = make_tasker("tree", concurrency=4)

    view = run_task(app, "tree", recorder.context())

    assert view.state == "complete"
    threads = {m.thread for m in recorder.marks_of(view.task_uuid, kind="start")}
    assert len(threads) >= 2, "the five grandchildren all ran on one thread"


# -- retries -------------------------------------------------------------------------------------


def test_step_failing_twice_completes_on_the_third_attempt_after_exponential_backoff(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("flaky")

    view = run_task(app, "flaky", recorder.context(fail_times=2))

    step = view.steps["flaky"]
    assert view.state == "complete"
    assert (step.state, step.attempts, step.result, step.error) == (
        "complete",
        3,
        {"succeeded_on_attempt": 3},
        None,
    )
    assert backoffs(app, step.step_uuid) == [0.1, 0.2]  # 100 ms * 2^(n-1), no jitter
    first_gap, second_gap = gaps(recorder, view.task_uuid, "flaky")
    assert first_gap >= 0.1
    assert second_gap >= 0.2


def test_exhausted_retries_fail_the_step_and_the_task_with_one_dlq_entry(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("flaky")

    view = run_task(app, "flaky", recorder.context(fail_times=99))

    step = view.steps["flaky"]
    assert view.state == "error"  # canonical: gives up at once, nothing else in flight
    assert (step.state, step.attempts) == ("error", 3)
    error = error_of(view, "flaky")
    assert error["error_type"] == "retryable_error"
    assert error["message"] == "flaky: attempt 3 fails"
    assert len(recorder.marks_of(view.task_uuid, "flaky", "start")) == 3
    assert dlq_rows(app) == [
        {
            "task_uuid": view.task_uuid,
            "dlq_reason": "max_retries_exceeded",
            "resolution_status": "pending",
        }
    ]


@pytest.mark.parametrize(
    ("raised", "error_type"),
    [("permanent", "permanent_error"), ("value_error", "ValueError")],
)
def test_permanent_error_fails_the_task_after_one_attempt(
    make_tasker: MakeTasker, recorder: Recorder, raised: str, error_type: str
) -> None:
    app = make_tasker("raiser")

    view = run_task(app, "raiser", recorder.context(**{"raise": raised}))

    assert view.state == "error"
    assert (view.steps["raiser"].state, view.steps["raiser"].attempts) == ("error", 1)
    error = error_of(view, "raiser")
    assert (error["error_type"], error["retryable"]) == (error_type, False)
    assert error["message"] == f"raised {raised} on attempt 1"
    assert len(recorder.marks_of(view.task_uuid, "raiser", "start")) == 1
    assert table_counts(app)["dlq_entries"] == 1


def test_retryable_false_in_the_template_allows_exactly_one_attempt(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("no_retry")

    view = run_task(app, "no_retry", recorder.context(**{"raise": "retryable"}))

    assert view.state == "error"
    assert (view.steps["once"].state, view.steps["once"].attempts) == ("error", 1)
    error = error_of(view, "once")
    # The handler said "retry me"; the template's retryable: false wins.
    assert (error["error_type"], error["retryable"]) == ("retryable_error", True)
    assert len(recorder.marks_of(view.task_uuid, "once", "start")) == 1


def test_unknown_exception_is_recorded_by_class_name_and_retried(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("raiser")

    view = run_task(app, "raiser", recorder.context(**{"raise": "widget_jammed"}))

    assert view.state == "error"
    assert (view.steps["raiser"].state, view.steps["raiser"].attempts) == ("error", 3)
    error = error_of(view, "raiser")
    assert error["error_type"] == "WidgetJammedError"
    assert error["message"] == "raised widget_jammed on attempt 3"
    assert error["retryable"] is True
    assert "Traceback" in error["backtrace"]


def test_system_exit_in_a_handler_fails_the_attempt_and_the_worker_keeps_going(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("raiser", "linear_chain", concurrency=1)

    failed = run_task(app, "raiser", recorder.context(**{"raise": "system_exit"}))
    after = run_task(app, "linear_chain", recorder.context(seed=2))

    assert failed.state == "error"
    assert error_of(failed, "raiser")["error_type"] == "SystemExit"
    assert after.state == "complete"  # the only worker thread survived the SystemExit
    assert after.steps["fourth"].result == {"value": 65536}


@pytest.mark.parametrize("kind", ["set", "object", "nan"])
def test_result_that_is_not_json_fails_permanently_with_a_clear_message(
    make_tasker: MakeTasker, recorder: Recorder, kind: str
) -> None:
    app = make_tasker("bad_result")

    view = run_task(app, "bad_result", recorder.context(kind=kind))

    step = view.steps["bad"]
    assert view.state == "error"
    assert (step.state, step.attempts, step.result) == ("error", 1, None)
    error = error_of(view, "bad")
    assert (error["error_type"], error["retryable"]) == ("invalid_result", False)
    assert error["message"].startswith("result is not JSON-serialisable: ")


def test_delay_requested_by_the_handler_is_respected(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("polite")

    view = run_task(app, "polite", recorder.context(retry_after=0.4))

    step = view.steps["polite"]
    assert view.state == "complete"
    assert (step.attempts, step.result) == (2, {"attempt": 2})
    assert backoffs(app, step.step_uuid) == [0.4]  # not the policy's 10 ms
    (gap,) = gaps(recorder, view.task_uuid, "polite")
    assert gap >= 0.4


def test_handler_running_past_its_timeout_fails_with_timeout_and_is_retried(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("slow")

    view = run_task(app, "slow", recorder.context())

    step = view.steps["slow"]
    assert view.state == "complete"
    assert (step.state, step.attempts, step.result) == ("complete", 2, {"attempt": 2})
    retry_rows = [t for t in step_trail(app, step.step_uuid) if t.to_state == "waiting_for_retry"]
    assert len(retry_rows) == 1
    assert retry_rows[0].metadata["error"]["error_type"] == "timeout"
    first, second = recorder.marks_of(view.task_uuid, "slow", "start")
    assert second.at - first.at >= 1.0  # timeout_seconds: 1
    assert [bool(r["success"]) for r in audit_rows(app, step.step_uuid)] == [False, True]
    (timed_out,) = [
        r["execution_time_ms"]
        for r in rows(app, "SELECT success, execution_time_ms FROM workflow_step_result_audit")
        if not r["success"]
    ]
    assert timed_out >= 1000.0, "a timed-out run reports how long it ran, not 0 ms"


# -- two parents finishing at the same moment ----------------------------------------------------


def test_join_of_two_parents_finishing_together_is_enqueued_and_run_once(
    make_tasker: MakeTasker, recorder: Recorder
) -> None:
    app = make_tasker("rendezvous", concurrency=2)

    for round_ in range(20):
        view = run_task(app, "rendezvous", recorder.context(seed=3, round=round_))

        assert view.state == "complete", f"round {round_}"
        assert view.steps["join"].result == {"value": 110}, f"round {round_}"
        assert view.steps["join"].attempts == 1
        join_trail = [t.to_state for t in step_trail(app, view.steps["join"].step_uuid)]
        assert join_trail.count("enqueued") == 1, f"round {round_}: {join_trail}"
        assert len(recorder.marks_of(view.task_uuid, "join", "start")) == 1
        branch_threads = {
            m.thread
            for step in ("left", "right")
            for m in recorder.marks_of(view.task_uuid, step, "finish")
        }
        assert len(branch_threads) == 2, f"round {round_}: branches did not run side by side"


def test_wait_wakes_when_a_worker_of_this_process_settles_the_task(
    make_tasker: MakeTasker, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With re-reads 60 s apart, only the settle notification can end these waits in time.
    monkeypatch.setattr("tasker.runtime._WAIT_POLL_S", 60.0)
    app = make_tasker("linear_chain")
    started = time.monotonic()

    views = [run_task(app, "linear_chain", recorder.context(seed=seed)) for seed in (2, 3, 4)]

    assert [view.state for view in views] == ["complete"] * 3
    assert time.monotonic() - started < 10.0
