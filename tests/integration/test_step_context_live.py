"""StepContext as a handler sees it inside a real run (python-api.md §2, seed step-context-api).

Template context_probe: origin -> middle -> probe, and origin -> bystander. The probe handler
records every accessor on each of its three attempts (it fails the first two on purpose).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tasker.runtime import TaskView
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import MakeTasker, run_task

ORIGIN_RESULT = {"n": 7, "nested": {"deep": {"value": "x"}}, "items": [1, 2]}
CORRELATION_ID = "0b9f3c2e-5d1a-4c7e-9f00-3a2b1c0d9e8f"
INPUTS = {"seen": "here", "zero": 0, "empty": "", "no": False, "nothing": None}


@pytest.fixture
def probed(make_tasker: MakeTasker, recorder: Recorder) -> tuple[TaskView, list[dict[str, Any]]]:
    """The finished task and what the probe saw on each of its three attempts."""
    app = make_tasker("context_probe")
    view = run_task(
        app,
        "context_probe",
        recorder.context(succeed_on=3, **INPUTS),
        correlation_id=CORRELATION_ID,
    )
    assert view.state == "complete"
    assert view.steps["probe"].attempts == 3
    assert len(recorder.observations) == 3
    return view, recorder.observations


def test_task_inputs_are_read_with_get_input_and_get_input_or(
    probed: tuple[TaskView, list[dict[str, Any]]], recorder: Recorder
) -> None:
    view, (first, *_) = probed

    assert first["get_input.seen"] == "here"
    assert first["get_input.absent"] is None
    # get_input_or: falsy values are returned; only absent or null take the default.
    assert first["get_input_or.zero"] == 0
    assert first["get_input_or.empty"] == ""
    assert first["get_input_or.false"] is False
    assert first["get_input_or.null"] == "default"
    assert first["get_input_or.absent"] == "default"
    assert first["input_data"] == view.context == recorder.context(succeed_on=3, **INPUTS)


def test_step_config_comes_from_handler_initialization(
    probed: tuple[TaskView, list[dict[str, Any]]],
) -> None:
    _, (first, *_) = probed

    assert first["get_config.threshold"] == 5
    assert first["get_config.flag"] is False
    assert first["get_config.absent"] is None
    assert first["step_config"] == {"threshold": 5, "flag": False}
    assert first["step_inputs"] == {"threshold": 5, "flag": False}  # the step row's inputs
    assert first["handler_name"] == "engine_probe"
    assert first["namespace_name"] == "engine"


def test_dependency_results_are_unwrapped_and_include_transitive_ancestors(
    probed: tuple[TaskView, list[dict[str, Any]]],
) -> None:
    view, observations = probed

    for seen in observations:
        # origin is only a grandparent; bystander is a sibling branch, never an ancestor.
        assert seen["get_dependency_result_keys"] == ["middle", "origin"]
        assert seen["get_dependency_result.origin"] == ORIGIN_RESULT
        assert seen["get_dependency_result.middle"] == {"m": 1}
        assert seen["get_dependency_result.absent"] is None
        assert seen["get_dependency_field.nested"] == "x"
        assert seen["get_dependency_field.list_index"] is None  # no list indexing
        assert seen["get_dependency_field.missing_key"] is None
        assert seen["get_dependency_field.empty_path"] == {"m": 1}
        assert seen["get_dependency_field.absent_step"] is None
        assert seen["get_all_dependency_results.mid"] == [{"m": 1}]
    envelope = observations[0]["dependency_results.origin"]
    assert envelope["step_uuid"] == view.steps["origin"].step_uuid
    assert (envelope["success"], envelope["status"], envelope["error"]) == (True, "completed", None)
    assert envelope["result"] == ORIGIN_RESULT
    assert isinstance(envelope["metadata"], dict)
    assert observations[0]["dependency_results.origin.result"] == ORIGIN_RESULT


def test_retry_helpers_track_the_attempt(
    probed: tuple[TaskView, list[dict[str, Any]]],
) -> None:
    _, observations = probed

    seen = [
        (o["retry_count"], o["max_retries"], o["is_retry"], o["is_last_retry"])
        for o in observations
    ]
    assert seen == [(0, 3, False, False), (1, 3, True, False), (2, 3, True, True)]


def test_checkpoint_accessors_without_a_checkpoint(
    probed: tuple[TaskView, list[dict[str, Any]]],
) -> None:
    _, (first, *_) = probed

    assert first["checkpoint"] is None
    assert first["checkpoint_cursor"] is None
    assert first["checkpoint_items_processed"] == 0
    assert first["accumulated_results"] is None
    assert first["has_checkpoint"] is False


def test_identifiers_are_uuids_of_the_task_step_and_correlation(
    probed: tuple[TaskView, list[dict[str, Any]]],
) -> None:
    view, (first, *_) = probed

    assert first["task_uuid"] == uuid.UUID(view.task_uuid)
    assert first["step_uuid"] == uuid.UUID(view.steps["probe"].step_uuid)
    assert first["correlation_id"] == uuid.UUID(CORRELATION_ID)
    assert all(
        type(first[key]) is uuid.UUID for key in ("task_uuid", "step_uuid", "correlation_id")
    )
