"""ASGI layers around the routes: request ids and the last-resort 500, then body limits.

Plain ASGI rather than ``BaseHTTPMiddleware`` so the body is seen as it streams in: an oversized
request is refused after ``max_body_bytes + 1`` bytes, whatever its ``Content-Length`` says
(reliability.md R9.4), and nothing beyond the limit is ever held in memory.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tasker.api.errors import error_response

__all__ = ["BodyGuardMiddleware", "RequestContextMiddleware", "json_depth_exceeds"]

log = logging.getLogger("tasker.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A JSON string (escapes included) or one bracket; strings are skipped as whole tokens, so a
# bracket inside a string never counts.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as Latin-1."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects more than ``limit`` levels deep (no recursion)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


class RequestContextMiddleware:
    """Give every request an id, echo it as ``X-Request-ID``, and turn a crash into a 500.

    A client-supplied ``X-Request-ID`` is kept when it is a short token, so logs on both sides
    join up; anything else is replaced.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = header(scope, b"x-request-id")
        request_id = offered if offered and _REQUEST_ID.fullmatch(offered) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The one broad catch of the API (STYLE.md §4): log everything, answer nothing of it.
            log.exception("request crashed", extra={"request_id": request_id})
            if started:
                raise
            response = error_response(
                500,
                "INTERNAL_ERROR",
                "Internal server error; the server log has details under this request id",
                request_id,
            )
            await response(scope, receive, send_with_id)


class BodyGuardMiddleware:
    """Refuse bodies that are not JSON (415), too large (413) or nested too deep (400).

    The body is read as it arrives and counted; the first byte past ``max_bytes`` ends the
    request with 413. A body within the limit is then handed on unchanged.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        request_id = str(scope.get("state", {}).get("request_id", ""))
        length_text = header(scope, b"content-length")
        chunked = "chunked" in (header(scope, b"transfer-encoding") or "").lower()
        try:
            length = int(length_text) if length_text is not None else None
        except ValueError:
            length = None
        if not chunked and (length is None or length == 0):
            await self.app(scope, receive, send)
            return
        if not _is_json(header(scope, b"content-type")):
            await error_response(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Request body must be JSON, sent with Content-Type: application/json",
                request_id,
            )(scope, receive, send)
            return
        if length is not None and length > self.max_bytes:
            await self._too_large(scope, receive, send, request_id)
            return
        body = await self._read(receive)
        if body is None:
            await self._too_large(scope, receive, send, request_id)
            return
        if json_depth_exceeds(body, self.max_depth):
            await error_response(
                400,
                "JSON_ERROR",
                f"Request body nests deeper than {self.max_depth} levels",
                request_id,
            )(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        await error_response(
            413,
            "PAYLOAD_TOO_LARGE",
            f"Request body is larger than {self.max_bytes} bytes",
            request_id,
        )(scope, receive, send)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
