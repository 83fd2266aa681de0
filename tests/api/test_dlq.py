"""The DLQ routes (rest-api.md §3, §3.4, §4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import assert_envelope, blocked_fragile_task

NIL = "00000000-0000-0000-0000-000000000000"


def test_a_blocked_task_opens_an_entry_that_every_dlq_view_shows(http: httpx.Client) -> None:
    task_uuid, _ = blocked_fragile_task(http)
    (entry,) = http.get("/v1/dlq").json()
    assert entry["task_uuid"] == task_uuid
    assert (entry["dlq_reason"], entry["resolution_status"]) == ("max_retries_exceeded", "pending")
    assert entry["task_snapshot"]["task_name"] == "fragile"
    assert http.get(f"/v1/dlq/task/{task_uuid}").json() == entry
    (stats,) = http.get("/v1/dlq/stats").json()
    assert (stats["total_entries"], stats["pending"]) == (1, 1)
    (queued,) = http.get("/v1/dlq/investigation-queue").json()
    assert queued["dlq_entry_uuid"] == entry["dlq_entry_uuid"]
    assert queued["priority_score"] >= 500
    assert http.get("/v1/dlq", params={"resolution_status": "cancelled"}).json() == []
    assert http.get("/v1/dlq/staleness").status_code == 200


def test_update_records_the_resolution(http: httpx.Client) -> None:
    task_uuid, _ = blocked_fragile_task(http)
    entry = http.get(f"/v1/dlq/task/{task_uuid}").json()
    body = {
        "resolution_status": "manually_resolved",
        "resolution_notes": "fixed by hand",
        "resolved_by": "ann",
        "metadata": {"ticket": "OPS-1"},
    }
    response = http.patch(f"/v1/dlq/entry/{entry['dlq_entry_uuid']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "message": "Investigation status updated successfully",
        "dlq_entry_uuid": entry["dlq_entry_uuid"],
    }
    updated = http.get(f"/v1/dlq/task/{task_uuid}").json()
    assert updated["resolution_status"] == "manually_resolved"
    assert updated["resolved_by"] == "ann"
    assert updated["resolution_timestamp"] is not None
    assert updated["metadata"]["ticket"] == "OPS-1"
    assert http.get("/v1/dlq/investigation-queue").json() == []


def test_not_found_and_bad_input(http: httpx.Client) -> None:
    error = assert_envelope(http.get(f"/v1/dlq/task/{NIL}"), 404, "NOT_FOUND")
    assert error["message"] == f"DLQ entry not found for task {NIL}"
    assert_envelope(http.patch(f"/v1/dlq/entry/{NIL}", json={}), 404, "NOT_FOUND")
    assert_envelope(http.patch("/v1/dlq/entry/x", json={}), 400, "INVALID_UUID")
    bad_status = {"resolution_status": "forgotten"}
    assert_envelope(http.patch(f"/v1/dlq/entry/{NIL}", json=bad_status), 422, "VALIDATION_ERROR")
    assert_envelope(http.get("/v1/dlq/task/x"), 400, "INVALID_UUID")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/dlq", {"limit": 0}),
        ("/v1/dlq", {"limit": 101}),
        ("/v1/dlq", {"offset": -1}),
        ("/v1/dlq", {"resolution_status": "lost"}),
        ("/v1/dlq/investigation-queue", {"limit": 1000}),
        ("/v1/dlq/staleness", {"limit": "many"}),
    ],
)
def test_bad_query_parameters_are_400(
    http: httpx.Client, path: str, params: dict[str, Any]
) -> None:
    assert_envelope(http.get(path, params=params), 400, "BAD_REQUEST")
