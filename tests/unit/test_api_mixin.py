"""APIMixin against a real local HTTP server: status mapping, body parsing, Retry-After."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tasker.worker.api_mixin import ApiHandler, APIMixin, ApiResponse, classify_status
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult


@dataclass
class Canned:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Server:
    base_url: str
    routes: dict[str, Canned]
    release: threading.Event

    def json(self, path: str, status: int, body: Any, **headers: str) -> None:
        self.routes[path] = Canned(
            status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}
        )

    def text(self, path: str, status: int, body: str = "", **headers: str) -> None:
        self.routes[path] = Canned(status, body.encode(), {"Content-Type": "text/plain", **headers})


def _request_handler(routes: dict[str, Canned], release: threading.Event) -> type:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/echo":
                return self._echo()
            if path == "/hang":
                release.wait(timeout=10)
            canned = routes.get(path, Canned(404))
            self.send_response(canned.status)
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        def _echo(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            echoed = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": self.rfile.read(length).decode(),
            }
            payload = json.dumps(echoed).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _reply

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    routes: dict[str, Canned] = {}
    release = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _request_handler(routes, release))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    try:
        yield Server(f"http://{host!s}:{port}", routes, release)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class Fetch(ApiHandler):
    handler_name = "fetch_user"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.api_success(self.get("/user"))


class MixinLast(StepHandler, APIMixin):
    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({})


@pytest.fixture
def api(server: Server) -> Iterator[Fetch]:
    handler = Fetch()
    handler.base_url = server.base_url
    try:
        yield handler
    finally:
        handler.close()


STATUS_TABLE = [
    (400, "bad_request", False),
    (401, "unauthorized", False),
    (403, "forbidden", False),
    (404, "not_found", False),
    (405, "method_not_allowed", False),
    (408, "request_timeout", True),
    (409, "conflict", False),
    (410, "gone", False),
    (422, "unprocessable_entity", False),
    (429, "rate_limited", True),
    (500, "internal_server_error", True),
    (502, "bad_gateway", True),
    (503, "service_unavailable", True),
    (504, "gateway_timeout", True),
    (418, "client_error", False),
    (501, "server_error", False),
    (599, "server_error", False),
    (302, "http_error", False),
]


@pytest.mark.parametrize(("status", "error_type", "retryable"), STATUS_TABLE)
def test_api_failure_classifies_status(
    api: Fetch, server: Server, status: int, error_type: str, retryable: bool
) -> None:
    server.text("/thing", status, "", Location="/elsewhere")
    response = api.get("/thing")
    result = api.api_failure(response)
    assert response.status_code == status
    assert (result.is_success, result.error_type, result.retryable) == (
        False,
        error_type,
        retryable,
    )
    assert response.is_retryable is retryable
    assert classify_status(status) == (error_type, retryable)


def test_api_success_uses_a_json_body_as_the_result(api: Fetch, server: Server) -> None:
    server.json("/user", 200, {"id": 7, "name": "Ada"}, **{"X-Request-Id": "r1"})
    context = StepContext.model_validate(
        {"task_uuid": uuid.uuid4(), "step_uuid": uuid.uuid4(), "handler_name": "fetch_user"}
    )
    result = api.call(context)
    assert result.result == {"id": 7, "name": "Ada"}
    assert result.metadata["status_code"] == 200
    assert result.metadata["headers"]["x-request-id"] == "r1"


def test_api_success_wraps_non_dict_bodies_and_can_leave_out_the_response(
    api: Fetch, server: Server
) -> None:
    server.json("/list", 200, [1, 2])
    server.text("/plain", 200, "pong")
    assert api.api_success(api.get("/list")).result == {"data": [1, 2]}
    plain = api.api_success(api.get("/plain"), include_response=False)
    assert (plain.result, plain.metadata) == ({"data": "pong"}, {})
    custom = api.api_success(api.get("/plain"), result={"ok": True})
    assert custom.result == {"ok": True}


def test_body_that_claims_json_but_is_not_stays_text(api: Fetch, server: Server) -> None:
    server.routes["/broken"] = Canned(200, b"{not json", {"Content-Type": "application/json"})
    assert api.get("/broken").body == "{not json"


def test_json_body_is_parsed_only_for_json_content_types(api: Fetch, server: Server) -> None:
    server.routes["/html"] = Canned(200, b'{"a": 1}', {"Content-Type": "text/html"})
    assert api.get("/html").body == '{"a": 1}'


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"error": "card declined"}, "card declined"),
        ({"message": "m", "error": "e"}, "e"),
        ({"error": {"message": "nested reason"}}, "nested reason"),
        ({"error": 42, "detail": "from detail"}, "from detail"),
        ({"msg": "short"}, "short"),
        ({"unrelated": "x"}, "Unprocessable Entity"),
    ],
)
def test_api_failure_message_takes_the_first_error_string(
    api: Fetch, server: Server, body: dict[str, Any], detail: str
) -> None:
    server.json("/fail", 422, body)
    result = api.api_failure(api.get("/fail"))
    assert result.error_message == f"HTTP 422: {detail}"
    assert result.metadata["response_body"] == body


def test_api_failure_without_body_uses_the_reason_phrase_and_omits_the_body(
    api: Fetch, server: Server
) -> None:
    server.text("/missing", 404)
    result = api.api_failure(api.get("/missing"))
    assert result.error_message == "HTTP 404: Not Found"
    assert "response_body" not in result.metadata
    assert "retry_after_seconds" not in result.metadata
    assert result.metadata["status_code"] == 404


def test_api_failure_custom_message(api: Fetch, server: Server) -> None:
    server.text("/boom", 500, "stack trace")
    result = api.api_failure(api.get("/boom"), "payments down")
    assert result.error_message == "payments down"
    assert result.metadata["response_body"] == "stack trace"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120), (" 5 ", 5), ("Wed, 21 Oct 2015 07:28:00 GMT", 60), ("-3", 60)],
)
def test_retry_after_is_parsed_into_the_failure_metadata(
    api: Fetch, server: Server, header: str, seconds: int
) -> None:
    server.json("/limited", 429, {"error": "slow down"}, **{"Retry-After": header})
    response = api.get("/limited")
    result = api.api_failure(response)
    assert response.retry_after == seconds
    assert result.metadata["retry_after_seconds"] == seconds
    assert (result.error_type, result.retryable) == ("rate_limited", True)


def test_response_flags_and_dict(api: Fetch, server: Server) -> None:
    server.json("/created", 201, {"id": 1})
    server.text("/teapot", 418)
    server.text("/down", 503)
    created, teapot, down = api.get("/created"), api.get("/teapot"), api.get("/down")
    assert (created.ok, created.is_client_error, created.is_server_error) == (True, False, False)
    assert (teapot.ok, teapot.is_client_error, teapot.is_server_error) == (False, True, False)
    assert (down.ok, down.is_client_error, down.is_server_error) == (False, False, True)
    assert created.retry_after is None
    as_dict = created.to_dict()
    assert (as_dict["status_code"], as_dict["body"]) == (201, {"id": 1})
    assert as_dict["headers"]["content-type"] == "application/json"


def test_verbs_send_params_bodies_and_default_headers(server: Server) -> None:
    class Payments(APIMixin, StepHandler):
        base_url = server.base_url
        default_headers = {"X-Api-Key": "k1"}  # noqa: RUF012

        def call(self, context: StepContext) -> StepHandlerResult:
            return self.success({})

    handler = Payments()
    try:
        got = handler.get("/echo", params={"page": 2}, headers={"X-Extra": "e"}).body
        posted = handler.post("/echo", json={"amount": 5}).body
        put = handler.put("/echo", data={"a": "b"}).body
        patched = handler.patch("/echo", json=[1]).body
        deleted = handler.delete("/echo").body
        raw = handler.request("OPTIONS", "/echo")
    finally:
        handler.close()
    assert (got["method"], got["path"]) == ("GET", "/echo?page=2")
    assert (got["headers"]["x-api-key"], got["headers"]["x-extra"]) == ("k1", "e")
    assert (posted["method"], json.loads(posted["body"])) == ("POST", {"amount": 5})
    assert (put["method"], put["body"]) == ("PUT", "a=b")
    assert (patched["method"], json.loads(patched["body"])) == ("PATCH", [1])
    assert deleted["method"] == "DELETE"
    assert raw.status_code == 501  # BaseHTTPRequestHandler has no do_OPTIONS


def test_client_is_created_lazily_and_recreated_after_close(server: Server) -> None:
    handler = MixinLast()
    handler.base_url = server.base_url
    first = handler.client
    assert handler.client is first
    assert str(first.base_url).rstrip("/") == server.base_url
    assert first.timeout.read == 30.0
    handler.close()
    assert first.is_closed
    second = handler.client
    assert second is not first
    handler.close()


def test_transport_errors_propagate_and_map_to_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = MixinLast()
    handler.base_url = f"http://127.0.0.1:{port}"
    try:
        with pytest.raises(httpx.ConnectError) as caught:
            handler.get("/anything")
    finally:
        handler.close()
    result = handler.connection_error(caught.value, "fetching user")
    assert result.error_message is not None
    assert result.error_message.startswith("Connection error while fetching user: ")
    assert (result.error_type, result.retryable) == ("connection_error", True)
    assert result.metadata == {"exception_type": "ConnectError"}


def test_read_timeout_maps_to_timeout_error(server: Server) -> None:
    handler = MixinLast()
    handler.base_url = server.base_url
    handler.default_timeout = 0.2
    try:
        with pytest.raises(httpx.ReadTimeout) as caught:
            handler.get("/hang")
    finally:
        handler.close()
    result = handler.timeout_error(caught.value)
    assert result.error_message == f"Request timeout: {caught.value}"
    assert (result.error_type, result.retryable) == ("timeout", True)
    assert result.metadata == {"exception_type": "ReadTimeout"}


def test_api_handler_capabilities() -> None:
    handler = Fetch()
    assert handler.capabilities == ["process", "http", "api"]
    assert handler.api_capabilities == ["http", "api"]


def test_api_response_accepts_a_preparsed_body() -> None:
    response = ApiResponse(httpx.Response(200, text="raw"), body={"parsed": True})
    assert response.body == {"parsed": True}
