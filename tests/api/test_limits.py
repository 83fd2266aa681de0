"""Hostile and malformed requests: each gets its documented status and the envelope (R9.4-R9.6)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import MakeServer, assert_envelope, create

LIMIT = 1_048_576


def _nested(depth: int) -> bytes:
    """A task request whose JSON nests exactly ``depth`` levels (the outer object is level 1)."""
    lists = "[" * (depth - 1) + "]" * (depth - 1)
    head = '{"name": "pipeline", "namespace": "ops", "version": "1.0.0", "context": '
    return (head + lists + "}").encode()


def test_malformed_json_is_400_json_error(http: httpx.Client) -> None:
    response = http.post(
        "/v1/tasks", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "JSON_ERROR")


def test_body_without_json_content_type_is_415(http: httpx.Client) -> None:
    response = http.post("/v1/tasks", content=b"{}", headers={"content-type": "text/plain"})
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    response = http.post("/v1/tasks", content=b"{}", headers={"content-type": ""})
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_oversized_body_with_content_length_is_413(http: httpx.Client) -> None:
    body = b'{"name": "' + b"x" * (LIMIT + 10) + b'"}'
    response = http.post("/v1/tasks", content=body, headers={"content-type": "application/json"})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_oversized_chunked_body_without_content_length_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MiB in 64 KiB chunks, sent chunked (no Content-Length)
            yield b"x" * 65536

    response = http.post(
        "/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_body_at_the_limit_is_read(http: httpx.Client) -> None:
    padding = LIMIT - 200
    body = json.dumps(
        {"name": "pipeline", "namespace": "ops", "version": "1.0.0", "reason": "r" * padding}
    ).encode()
    assert len(body) <= LIMIT
    response = http.post("/v1/tasks", content=body, headers={"content-type": "application/json"})
    assert_envelope(response, 400, "BAD_REQUEST")  # reason too long: the body was parsed


def test_nesting_deeper_than_64_is_400_json_error(http: httpx.Client) -> None:
    at_limit = http.post(
        "/v1/tasks", content=_nested(64), headers={"content-type": "application/json"}
    )
    assert_envelope(at_limit, 400, "BAD_REQUEST")  # parsed: the context is not an object
    too_deep = http.post(
        "/v1/tasks", content=_nested(65), headers={"content-type": "application/json"}
    )
    error = assert_envelope(too_deep, 400, "JSON_ERROR")
    assert "64" in error["message"]
    brackets_in_strings = json.dumps(
        {"name": "pipeline", "namespace": "ops", "version": "1.0.0", "reason": "[" * 501}
    )
    response = http.post(
        "/v1/tasks", content=brackets_in_strings, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"  # too long, not too deep


def test_unknown_route_and_method_get_the_envelope(http: httpx.Client) -> None:
    assert_envelope(http.get("/v2/nothing"), 404, "NOT_FOUND")
    assert_envelope(http.put("/v1/tasks"), 405, "METHOD_NOT_ALLOWED")


def test_request_id_is_echoed_or_made(http: httpx.Client) -> None:
    mine = http.get("/health", headers={"x-request-id": "req-123"})
    assert mine.headers["x-request-id"] == "req-123"
    made = http.get("/health", headers={"x-request-id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 36


@pytest.mark.parametrize(
    "value",
    ["'; DROP TABLE tasks; --", "\u202e\ufeff", "💥" * 50, "%00", "../../etc/passwd"],
)
def test_hostile_strings_are_stored_verbatim_or_refused(http: httpx.Client, value: str) -> None:
    task = create(http, context={"value": 1, "note": value}, tags=[value])
    stored = http.get(f"/v1/tasks/{task['task_uuid']}").json()
    assert stored["context"]["note"] == value
    assert stored["tags"] == [value]
    listed = http.get("/v1/tasks", params={"namespace": value})
    assert listed.status_code == 200
    assert listed.json()["tasks"] == []


def test_lone_surrogate_is_400_not_a_driver_error(http: httpx.Client) -> None:
    body = (
        b'{"name": "pipeline", "namespace": "ops", "version": "1.0.0", "context": {"x": "\\ud800"}}'
    )
    response = http.post("/v1/tasks", content=body, headers={"content-type": "application/json"})
    assert_envelope(response, 400, "BAD_REQUEST")


def test_a_crash_is_a_generic_500_without_internals(make_server: MakeServer) -> None:
    def add_crashing_route(app: FastAPI) -> None:
        @app.get("/boom")
        def boom() -> None:
            raise RuntimeError("SELECT secret FROM users -- /srv/app/db.py password=hunter2")

    server = make_server(prepare=add_crashing_route)
    response = httpx.get(server.url + "/boom")
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    for leak in ("SELECT", "RuntimeError", "hunter2", "db.py", "Traceback"):
        assert leak not in response.text
    assert error["request_id"]
