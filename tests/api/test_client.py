"""``TaskerClient`` against a real server: typed answers and tasker's own errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tasker.client import (
    ApiError,
    StepResponse,
    TaskerClient,
    TaskerConnectionError,
    TaskResponse,
)
from tasker.errors import DuplicateTask, StepNotFound, TaskerError, TaskNotFound, TemplateNotFound
from tests.api.conftest import MakeServer, Server, free_port

API_KEY = "client-test-key-0123456789"


@pytest.fixture
def client(server: Server) -> Iterator[TaskerClient]:
    with TaskerClient(server.url) as c:
        yield c


def _wait(client: TaskerClient, task_uuid: str, status: str) -> TaskResponse:
    import time

    deadline = time.monotonic() + 15
    while True:
        task = client.get_task(task_uuid)
        if task.status == status or time.monotonic() > deadline:
            assert task.status == status
            return task
        time.sleep(0.05)


def test_create_get_list_and_steps(client: TaskerClient) -> None:
    task = client.create_task("pipeline", namespace="ops", context={"value": 3}, tags=["t"])
    assert isinstance(task, TaskResponse)
    assert task.initiator == "tasker-core-python"
    assert task.tags == ["t"]
    assert len(task.steps) == 2
    done = _wait(client, task.task_uuid, "complete")
    assert done.is_finished
    page = client.list_tasks(limit=10, namespace="ops")
    assert [t.task_uuid for t in page.tasks] == [task.task_uuid]
    assert page.pagination.total_count == 1
    steps = client.list_task_steps(task.task_uuid)
    assert all(isinstance(s, StepResponse) for s in steps)
    add_one = next(s for s in steps if s.name == "add_one")
    assert add_one.results is not None
    assert add_one.results["result"] == {"value": 7}
    assert client.get_step(task.task_uuid, add_one.step_uuid) == add_one
    (audit,) = client.get_step_audit_history(task.task_uuid, add_one.step_uuid)
    assert audit.success is True
    with pytest.raises(TaskerError, match="cannot cancel"):
        client.cancel_task(task.task_uuid)


def test_operator_story_through_the_client(client: TaskerClient) -> None:
    task = client.create_task("fragile", namespace="ops", context={"order_id": 9})
    _wait(client, task.task_uuid, "error")
    entry = client.get_dlq_entry(task.task_uuid)
    assert entry.dlq_reason == "max_retries_exceeded"
    assert [e.dlq_entry_uuid for e in client.list_dlq(resolution_status="pending")] == [
        entry.dlq_entry_uuid
    ]
    assert client.dlq_investigation_queue()[0].task_uuid == task.task_uuid
    fetch = next(s for s in client.list_task_steps(task.task_uuid) if s.name == "fetch")
    step = client.complete_step_manually(
        task.task_uuid, fetch.step_uuid, {"tracking": "T-9"}, reason="phoned", by="ann"
    )
    assert step.current_state == "complete"
    _wait(client, task.task_uuid, "complete")
    answer = client.update_dlq_entry(
        entry.dlq_entry_uuid, resolution_status="manually_resolved", resolved_by="ann"
    )
    assert answer["success"] is True
    (stats,) = client.dlq_stats()
    assert (stats.total_entries, stats.manually_resolved) == (1, 1)
    assert isinstance(client.dlq_staleness(), list)


def test_errors_are_tasker_errors(client: TaskerClient) -> None:
    with pytest.raises(TaskNotFound):
        client.get_task(str(uuid.uuid4()))
    with pytest.raises(StepNotFound):
        client.get_step(str(uuid.uuid4()), str(uuid.uuid4()))
    with pytest.raises(TemplateNotFound):
        client.create_task("nope", namespace="ops")
    with pytest.raises(TemplateNotFound):
        client.get_template("ops", "nope", "1.0.0")
    first = client.create_task("pipeline", namespace="ops", context={"value": 1})
    with pytest.raises(DuplicateTask) as duplicate:
        client.create_task("pipeline", namespace="ops", context={"value": 1})
    assert duplicate.value.task_uuid == first.task_uuid
    with pytest.raises(ApiError) as bad:
        client.create_task("pipeline", namespace="ops", context={"value": "x"})
    assert (bad.value.status_code, bad.value.code) == (400, "BAD_REQUEST")
    assert bad.value.request_id
    batch = client.create_tasks(
        [{"name": "pipeline", "namespace": "ops", "context": {"value": v}} for v in (7, 8)]
    )
    assert [task.context for task in batch] == [{"value": 7}, {"value": 8}]
    with pytest.raises(DuplicateTask) as in_batch:
        client.create_tasks([{"name": "pipeline", "namespace": "ops", "context": {"value": 1}}])
    assert in_batch.value.task_uuid == first.task_uuid
    assert str(in_batch.value).startswith("request 0: ")
    with pytest.raises(ApiError) as illegal:
        client.reset_step(first.task_uuid, first.steps[0].workflow_step_uuid, reason="r")
    assert illegal.value.code == "BAD_REQUEST"
    with pytest.raises(ValueError, match="multiple of limit"):
        client.list_tasks(limit=10, offset=5)
    with pytest.raises(ValueError, match="unknown action"):
        client.resolve_step(first.task_uuid, first.task_uuid, "explode", reason="r")


def test_templates_and_health(client: TaskerClient) -> None:
    listing = client.list_templates(namespace="ops")
    assert listing.total_count == 2
    detail = client.get_template("ops", "pipeline", "1.0.0")
    assert [s["name"] for s in detail.steps] == ["double", "add_one"]
    health = client.health_check()
    assert health.is_ready
    assert health.checks is not None


def test_health_check_reports_not_ready_instead_of_raising(server: Server) -> None:
    server.tasker.stop()
    server.tasker.store.close()
    with TaskerClient(server.url) as client:
        health = client.health_check()
    assert health.status == "not_ready"
    assert not health.is_ready
    assert health.checks is not None
    assert health.checks["web_database"]["status"] == "unhealthy"


def test_credentials_are_sent(make_server: MakeServer) -> None:
    server = make_server(auth_enabled="true", api_key=API_KEY)
    with TaskerClient(server.url) as anonymous, pytest.raises(ApiError) as refused:
        anonymous.list_tasks()
    assert (refused.value.status_code, refused.value.code) == (401, "UNAUTHORIZED")
    with TaskerClient(server.url, api_key=API_KEY) as client:
        assert client.list_tasks().tasks == ()


def test_unreachable_server_is_a_retryable_connection_error() -> None:
    client = TaskerClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(TaskerConnectionError) as failed:
        client.get_task(str(uuid.uuid4()))
    assert failed.value.retryable is True
    assert "cannot reach" in str(failed.value)
