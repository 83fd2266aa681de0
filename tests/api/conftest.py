"""A real uvicorn server on 127.0.0.1 (free port, thread) over a real store, per test.

- ``make_server(**api_settings)``: starts a server (workers running) on ``store_url`` with the
  operator fixture templates and handlers; every server it made is stopped after the test.
- ``server``: one server with default settings (loopback, so auth is off).
- ``http``: an ``httpx.Client`` on ``server``.
- ``wait_for_status``: poll a task until its status is one of the given states.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tasker.api import ApiSettings, create_app
from tasker.config import Settings
from tasker.runtime import Tasker

HANDLERS = "tests.fixtures.handlers.operator_handlers"
TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "templates" / "operator"
WAIT_S = 15.0

FAST: dict[str, Any] = {
    "env": "test",
    "concurrency": 2,
    "maintenance_interval_s": 0.02,
    "poll_interval_s": 0.05,
    "jitter_enabled": False,
    "shutdown_grace_s": 2.0,
}


@dataclass
class Server:
    """A running server: its URL, the runtime it serves and the ASGI app."""

    url: str
    tasker: Tasker
    app: FastAPI
    uvicorn: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(10)
        self.tasker.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    store_url: str,
    *,
    workers: bool = True,
    prepare: Callable[[FastAPI], None] | None = None,
    **api: Any,
) -> Server:
    """Start uvicorn in a thread and wait until it accepts connections."""
    tasker = Tasker(
        settings=Settings.load({**FAST, "database_url": store_url}),
        templates=[TEMPLATES],
        handlers=[HANDLERS],
    )
    port = free_port()
    settings = ApiSettings.load({"host": "127.0.0.1", "port": port, **api}, environ={})
    app = create_app(tasker, settings)
    if prepare is not None:
        prepare(app)
    if workers:
        tasker.start()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            tasker.close()
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    return Server(f"http://127.0.0.1:{port}", tasker, app, server, thread)


MakeServer = Callable[..., Server]


@pytest.fixture
def make_server(store_url: str) -> Iterator[MakeServer]:
    started: list[Server] = []

    def make(**kwargs: Any) -> Server:
        server = start_server(store_url, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: MakeServer) -> Server:
    return make_server()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def wait_for_status(
    http: httpx.Client, task_uuid: str, statuses: set[str], timeout: float = WAIT_S
) -> dict[str, Any]:
    """The task once its status is one of ``statuses``; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"/v1/tasks/{task_uuid}").json()
        if body.get("status") in statuses or time.monotonic() > deadline:
            assert body.get("status") in statuses, body
            return body
        time.sleep(0.05)


def create(http: httpx.Client, name: str = "pipeline", **fields: Any) -> dict[str, Any]:
    """POST a task of the ``ops`` fixture templates; asserts 201."""
    body = {"name": name, "namespace": "ops", "version": "1.0.0", **fields}
    response = http.post("/v1/tasks", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with the error envelope of rest-api.md §1 and ``code``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert error["request_id"] == response.headers["x-request-id"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(error) <= {"code", "message", "request_id", "details"}
    return error


def blocked_fragile_task(http: httpx.Client, order_id: int = 1) -> tuple[str, str]:
    """A ``fragile`` task that failed into the DLQ; returns (task uuid, fetch step uuid)."""
    task = create(http, "fragile", context={"order_id": order_id})
    wait_for_status(http, task["task_uuid"], {"error"})
    steps = http.get(f"/v1/tasks/{task['task_uuid']}/workflow_steps").json()
    fetch = next(s for s in steps if s["name"] == "fetch")
    return task["task_uuid"], fetch["step_uuid"]
