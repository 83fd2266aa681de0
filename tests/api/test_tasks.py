"""Tasks: create, get, list, cancel, summary (rest-api.md §3.1, §3.2, §4)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.conftest import (
    Server,
    assert_envelope,
    blocked_fragile_task,
    create,
    wait_for_status,
)

NIL = "00000000-0000-0000-0000-000000000000"


def test_created_task_answers_201_with_its_steps_and_runs_to_complete(http: httpx.Client) -> None:
    task = create(http, context={"value": 5}, tags=["a"], priority=7)
    # The server's workers may finish the two steps before the response is built.
    assert task["status"] in ("steps_in_process", "evaluating_results", "complete")
    assert {s["name"] for s in task["steps"]} == {"double", "add_one"}
    assert task["context"] == {"value": 5}
    assert (task["tags"], task["priority"], task["total_steps"]) == (["a"], 7, 2)
    assert task["created_at"].endswith("Z")
    done = wait_for_status(http, task["task_uuid"], {"complete"})
    assert done["completion_percentage"] == 100.0
    assert done["execution_status"] == "all_complete"
    steps = http.get(f"/v1/tasks/{task['task_uuid']}/workflow_steps").json()
    assert {s["name"]: s["results"]["result"]["value"] for s in steps} == {
        "double": 10,
        "add_one": 11,
    }


def test_duplicate_identity_is_409_with_the_existing_task_uuid(http: httpx.Client) -> None:
    first = create(http, context={"value": 1})
    response = http.post(
        "/v1/tasks",
        json={"name": "pipeline", "namespace": "ops", "version": "1.0.0", "context": {"value": 1}},
    )
    error = assert_envelope(response, 409, "CONFLICT")
    assert error["details"] == {"task_uuid": first["task_uuid"]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "Task name cannot be empty"),
        ({"namespace": " "}, "Namespace cannot be empty"),
        ({"version": ""}, "Version cannot be empty"),
        ({"name": "x" * 256}, "name must be at most 255 characters"),
        ({"context": [1, 2]}, "context must be a JSON object"),
        ({"priority": 101}, "priority must be between -100 and 100"),
        ({"context": {"v": "a\u0000b"}}, "NUL"),
        ({"correlation_id": "nope"}, "correlation_id must be a UUID"),
        ({"context": {"value": "five"}}, "input_schema"),
    ],
)
def test_field_rules_are_400_bad_request(
    http: httpx.Client, fields: dict[str, object], message: str
) -> None:
    body = {"name": "pipeline", "namespace": "ops", "version": "1.0.0", **fields}
    error = assert_envelope(http.post("/v1/tasks", json=body), 400, "BAD_REQUEST")
    assert message in error["message"]
    assert http.get("/v1/tasks").json()["pagination"]["total_count"] == 0


def test_wrong_shape_is_422_validation_error(http: httpx.Client) -> None:
    error = assert_envelope(
        http.post("/v1/tasks", json={"name": 5, "version": "1.0.0"}), 422, "VALIDATION_ERROR"
    )
    locations = {tuple(e["loc"]) for e in error["details"]["errors"]}
    assert ("body", "namespace") in locations
    assert ("body", "name") in locations


def test_unknown_template_is_404(http: httpx.Client) -> None:
    response = http.post("/v1/tasks", json={"name": "nope", "namespace": "ops", "version": "1"})
    error = assert_envelope(response, 404, "NOT_FOUND")
    assert error["message"] == "Task template not found: ops/nope/1"


def test_get_unknown_task_is_404_and_bad_uuid_is_400_invalid_uuid(http: httpx.Client) -> None:
    assert_envelope(http.get(f"/v1/tasks/{NIL}"), 404, "NOT_FOUND")
    error = assert_envelope(http.get("/v1/tasks/not-a-uuid"), 400, "INVALID_UUID")
    assert "not-a-uuid" in error["message"]
    assert_envelope(http.delete("/v1/tasks/12345"), 400, "INVALID_UUID")
    assert_envelope(http.get("/v1/tasks/xyz/summary"), 400, "INVALID_UUID")


def test_list_pages_and_filters(http: httpx.Client) -> None:
    made = [create(http, context={"value": i})["task_uuid"] for i in range(3)]
    fragile, _ = blocked_fragile_task(http)
    page = http.get("/v1/tasks", params={"per_page": 2, "page": 1}).json()
    assert page["pagination"] == {
        "page": 1,
        "per_page": 2,
        "total_count": 4,
        "total_pages": 2,
        "has_next": True,
        "has_previous": False,
    }
    assert [t["task_uuid"] for t in page["tasks"]] == [fragile, made[2]]  # newest first
    second = http.get("/v1/tasks", params={"per_page": 2, "page": 2}).json()
    assert [t["task_uuid"] for t in second["tasks"]] == [made[1], made[0]]
    assert second["pagination"]["has_previous"] is True
    errors = http.get("/v1/tasks", params={"status": "error"}).json()
    assert [t["task_uuid"] for t in errors["tasks"]] == [fragile]
    assert http.get("/v1/tasks", params={"namespace": "other"}).json()["tasks"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": 0}, "page must be >= 1"),
        ({"per_page": 0}, "per_page must be between 1 and 100"),
        ({"per_page": 101}, "per_page must be between 1 and 100"),
        ({"status": "exploded"}, "status must be one of"),
        ({"page": "two"}, "page"),
        ({"page": 10**12}, "page must be <="),
    ],
)
def test_bad_query_parameters_are_400(
    http: httpx.Client, params: dict[str, Any], message: str
) -> None:
    error = assert_envelope(http.get("/v1/tasks", params=params), 400, "BAD_REQUEST")
    assert message in error["message"]


def test_cancel_of_a_finished_task_is_400_and_of_an_unknown_one_404(
    http: httpx.Client,
) -> None:
    task_uuid, _ = blocked_fragile_task(http)
    # A task in error (given up) is terminal; a fresh blocked-free task is needed to cancel.
    response = http.delete(f"/v1/tasks/{task_uuid}")
    assert_envelope(response, 400, "BAD_REQUEST")
    assert_envelope(http.delete(f"/v1/tasks/{NIL}"), 404, "NOT_FOUND")


def test_cancel_of_a_running_task(http: httpx.Client, server: Server) -> None:
    server.tasker.stop()  # nobody runs the steps, so the task stays unfinished
    task = create(http, context={"value": 3})
    response = http.delete(f"/v1/tasks/{task['task_uuid']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled"
    assert {s["current_state"] for s in body["steps"]} == {"cancelled"}
    assert_envelope(http.delete(f"/v1/tasks/{task['task_uuid']}"), 400, "BAD_REQUEST")


def test_summary_names_template_steps_errors_and_dlq(http: httpx.Client) -> None:
    task_uuid, _ = blocked_fragile_task(http)
    summary = http.get(f"/v1/tasks/{task_uuid}/summary").json()
    assert summary["task"]["status"] == "error"
    assert "context" not in summary["task"]
    assert [s["name"] for s in summary["template"]["steps"]] == ["fetch", "ship"]
    assert summary["template"]["steps"][1]["dependencies"] == ["fetch"]
    fetch = next(s for s in summary["steps"] if s["name"] == "fetch")
    assert fetch["error"]["retryable"] is False
    assert summary["dlq"] == {
        "in_dlq": True,
        "dlq_reason": "max_retries_exceeded",
        "resolution_status": "pending",
    }
    assert summary["links"]["task"] == f"/v1/tasks/{task_uuid}"
    assert_envelope(http.get(f"/v1/tasks/{uuid.uuid4()}/summary"), 404, "NOT_FOUND")


# -- POST /v1/tasks/batch (ADR 0013) ------------------------------------------------------------


def pipeline(value: object, **fields: Any) -> dict[str, Any]:
    return {
        "name": "pipeline",
        "namespace": "ops",
        "version": "1.0.0",
        "context": {"value": value},
        **fields,
    }


def test_batch_creates_every_task_in_order_and_each_runs(http: httpx.Client) -> None:
    response = http.post("/v1/tasks/batch", json={"tasks": [pipeline(1), pipeline(2), pipeline(3)]})

    assert response.status_code == 201, response.text
    tasks = response.json()["tasks"]
    assert [task["context"] for task in tasks] == [{"value": 1}, {"value": 2}, {"value": 3}]
    for task, value in zip(tasks, (1, 2, 3), strict=True):
        wait_for_status(http, task["task_uuid"], {"complete"})
        steps = http.get(f"/v1/tasks/{task['task_uuid']}/workflow_steps").json()
        assert {s["name"]: s["results"]["result"]["value"] for s in steps} == {
            "double": 2 * value,
            "add_one": 2 * value + 1,
        }


@pytest.mark.parametrize(
    ("tasks", "status", "code", "message"),
    [
        ([pipeline(1), pipeline(2, name="")], 400, "BAD_REQUEST", "request 1: Task name cannot"),
        ([pipeline(1), pipeline("five")], 400, "BAD_REQUEST", "request 1: context does not match"),
        ([pipeline(1), pipeline(2, name="nope")], 404, "NOT_FOUND", "request 1: template not"),
        ([pipeline(1), pipeline(2), pipeline(1)], 409, "CONFLICT", "request 2: a task with"),
        ([], 400, "BAD_REQUEST", "tasks must hold 1 to 100 requests, got 0"),
        (
            [pipeline(i) for i in range(101)],
            400,
            "BAD_REQUEST",
            "tasks must hold 1 to 100 requests, got 101",
        ),
    ],
)
def test_a_refused_batch_names_the_request_and_creates_nothing(
    http: httpx.Client, tasks: list[dict[str, Any]], status: int, code: str, message: str
) -> None:
    error = assert_envelope(http.post("/v1/tasks/batch", json={"tasks": tasks}), status, code)

    assert error["message"].startswith(message), error
    assert http.get("/v1/tasks").json()["pagination"]["total_count"] == 0


def test_batch_repeating_an_existing_task_is_409_naming_it(http: httpx.Client) -> None:
    first = create(http, context={"value": 1})

    response = http.post("/v1/tasks/batch", json={"tasks": [pipeline(2), pipeline(1)]})

    error = assert_envelope(response, 409, "CONFLICT")
    assert error["details"] == {"task_uuid": first["task_uuid"]}
    assert http.get("/v1/tasks").json()["pagination"]["total_count"] == 1
