"""Steps: list, get, audit, and the manual actions of rest-api.md §3.3."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.conftest import assert_envelope, blocked_fragile_task, create, wait_for_status

NIL = "00000000-0000-0000-0000-000000000000"


def _steps(http: httpx.Client, task_uuid: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in http.get(f"/v1/tasks/{task_uuid}/workflow_steps").json()}


def test_list_get_and_audit_of_a_finished_task(http: httpx.Client) -> None:
    task = create(http, context={"value": 2})
    wait_for_status(http, task["task_uuid"], {"complete"})
    steps = _steps(http, task["task_uuid"])
    double = steps["double"]
    assert double["current_state"] == "complete"
    assert double["results"]["result"] == {"value": 4}
    assert steps["add_one"]["total_parents"] == 1
    assert steps["add_one"]["completed_parents"] == 1
    one = http.get(f"/v1/tasks/{task['task_uuid']}/workflow_steps/{double['step_uuid']}")
    assert one.status_code == 200
    assert one.json() == double
    audit = http.get(f"/v1/tasks/{task['task_uuid']}/workflow_steps/{double['step_uuid']}/audit")
    assert audit.status_code == 200
    (record,) = audit.json()
    assert record["success"] is True
    assert record["step_name"] == "double"
    assert record["to_state"] == "enqueued_for_orchestration"
    assert None not in record.values()  # optional keys are left out when null


def test_unknown_task_lists_no_steps(http: httpx.Client) -> None:
    response = http.get(f"/v1/tasks/{NIL}/workflow_steps")
    assert response.status_code == 200
    assert response.json() == []


def test_step_of_another_task_is_404(http: httpx.Client) -> None:
    first = create(http, context={"value": 1})
    second = create(http, context={"value": 2})
    step = first["steps"][0]["workflow_step_uuid"]
    path = f"/v1/tasks/{second['task_uuid']}/workflow_steps/{step}"
    assert_envelope(http.get(path), 404, "NOT_FOUND")
    assert_envelope(http.get(path + "/audit"), 404, "NOT_FOUND")
    body = {"action_type": "resolve_manually", "reason": "x", "resolved_by": "me"}
    assert_envelope(http.patch(path, json=body), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/tasks/bad/workflow_steps", "Invalid task UUID format"),
        (f"/v1/tasks/bad/workflow_steps/{NIL}", "Invalid task UUID format"),
        (f"/v1/tasks/{NIL}/workflow_steps/bad", "Invalid step UUID format"),
        (f"/v1/tasks/{NIL}/workflow_steps/bad/audit", "Invalid step UUID format"),
    ],
)
def test_step_routes_answer_bad_uuids_with_bad_request(
    http: httpx.Client, path: str, message: str
) -> None:
    error = assert_envelope(http.get(path), 400, "BAD_REQUEST")
    assert error["message"] == message


def test_complete_manually_unblocks_the_task_and_dependents_read_the_result(
    http: httpx.Client,
) -> None:
    task_uuid, fetch = blocked_fragile_task(http)
    body = {
        "action_type": "complete_manually",
        "completion_data": {"result": {"tracking": "TRK-1"}, "metadata": {"ticket": 7}},
        "reason": "supplier confirmed by phone",
        "completed_by": "ann",
    }
    response = http.patch(f"/v1/tasks/{task_uuid}/workflow_steps/{fetch}", json=body)
    assert response.status_code == 200, response.text
    step = response.json()
    assert step["current_state"] == "complete"
    assert step["results"]["result"] == {"tracking": "TRK-1"}
    assert step["results"]["metadata"]["completed_by"] == "ann"
    assert step["results"]["metadata"]["custom"] == {"ticket": 7}
    wait_for_status(http, task_uuid, {"complete"})
    ship = _steps(http, task_uuid)["ship"]
    assert ship["results"]["result"] == {"shipped": "TRK-1"}
    again = http.patch(f"/v1/tasks/{task_uuid}/workflow_steps/{fetch}", json=body)
    error = assert_envelope(again, 400, "BAD_REQUEST")
    assert "Cannot manually complete step" in error["message"]


def test_resolve_manually_satisfies_dependents(http: httpx.Client) -> None:
    task_uuid, fetch = blocked_fragile_task(http)
    body = {"action_type": "resolve_manually", "reason": "not needed"}
    response = http.patch(f"/v1/tasks/{task_uuid}/workflow_steps/{fetch}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["current_state"] == "resolved_manually"
    wait_for_status(http, task_uuid, {"complete"})
    ship = _steps(http, task_uuid)["ship"]
    assert ship["results"]["result"] == {"shipped": None}  # fetch left no result


def test_reset_for_retry_runs_the_step_again(http: httpx.Client) -> None:
    task_uuid, fetch = blocked_fragile_task(http)
    body = {"action_type": "reset_for_retry", "reason": "supplier is back", "reset_by": "bob"}
    response = http.patch(f"/v1/tasks/{task_uuid}/workflow_steps/{fetch}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["current_state"] in ("pending", "enqueued", "in_progress", "error")
    wait_for_status(http, task_uuid, {"error"})
    audit = http.get(f"/v1/tasks/{task_uuid}/workflow_steps/{fetch}/audit").json()
    assert len(audit) == 2  # the handler ran a second time (and failed again)


def test_reset_of_a_step_not_in_error_is_400(http: httpx.Client) -> None:
    task = create(http, context={"value": 1})
    wait_for_status(http, task["task_uuid"], {"complete"})
    step = task["steps"][0]["workflow_step_uuid"]
    body = {"action_type": "reset_for_retry", "reason": "why not", "reset_by": "bob"}
    response = http.patch(f"/v1/tasks/{task['task_uuid']}/workflow_steps/{step}", json=body)
    assert_envelope(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"action_type": "explode", "reason": "x"}, 422, "VALIDATION_ERROR"),
        ({"reason": "x"}, 422, "VALIDATION_ERROR"),
        ({"action_type": "complete_manually", "reason": "x"}, 422, "VALIDATION_ERROR"),
        ({"action_type": "resolve_manually", "reason": ""}, 400, "BAD_REQUEST"),
        ({"action_type": "resolve_manually", "reason": "r" * 501}, 400, "BAD_REQUEST"),
    ],
)
def test_bad_action_bodies(
    http: httpx.Client, body: dict[str, Any], status: int, code: str
) -> None:
    path = f"/v1/tasks/{uuid.uuid4()}/workflow_steps/{uuid.uuid4()}"
    assert_envelope(http.patch(path, json=body), status, code)
