"""One table from error to HTTP status, and the one error envelope (rest-api.md §1, R9.6).

Every non-2xx answer the app produces goes through ``error_response``, so the body is always
``{"error": {"code", "message", "request_id", "details"?}}``. A 5xx never carries the
exception's text (it may hold SQL or a path): the message is generic and the traceback goes to
the log under the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tasker.errors import (
    DuplicateTask,
    IllegalTransition,
    InvalidContext,
    MigrationRequired,
    NotFound,
    StoreUnavailable,
    TaskerError,
    TemplateError,
)

__all__ = [
    "ERROR_TABLE",
    "RETRY_AFTER_S",
    "ApiProblem",
    "error_body",
    "error_response",
    "install_error_handlers",
    "request_id_of",
    "status_for",
]

log = logging.getLogger("tasker.api")

RETRY_AFTER_S = 5
"""What ``Retry-After`` tells a client when the database is unreachable (R3.3)."""

ERROR_TABLE: tuple[tuple[type[TaskerError], int, str], ...] = (
    (DuplicateTask, 409, "CONFLICT"),
    (NotFound, 404, "NOT_FOUND"),
    (InvalidContext, 400, "BAD_REQUEST"),
    (TemplateError, 400, "BAD_REQUEST"),
    (IllegalTransition, 400, "BAD_REQUEST"),
    (StoreUnavailable, 503, "SERVICE_UNAVAILABLE"),
    (MigrationRequired, 503, "SERVICE_UNAVAILABLE"),
)
"""First matching class wins; any other ``TaskerError`` is a 500 ``INTERNAL_ERROR`` (a bug)."""

_GENERIC = {
    500: "Internal server error; the server log has details under this request id",
    503: "Service unavailable: the database cannot be reached; retry later",
}
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class ApiProblem(Exception):
    """An answer the API gives directly (bad query parameter, invalid UUID, not ready).

    Raised inside routes and turned into the envelope by the handler ``install_error_handlers``
    registers; it never reaches a caller of the package.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers or {})


def status_for(exc: TaskerError) -> tuple[int, str]:
    """The HTTP status and error code the table gives ``exc``."""
    for cls, status, code in ERROR_TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "INTERNAL_ERROR"


def request_id_of(request: Request) -> str:
    """The id the request-context middleware gave this request."""
    return str(getattr(request.state, "request_id", ""))


def error_body(
    code: str, message: str, request_id: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The envelope as a JSON-ready dict."""
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        error["details"] = dict(details)
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying the envelope."""
    return JSONResponse(
        error_body(code, message, request_id, details), status_code=status, headers=headers
    )


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "request failed"
    return lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more problems)"


def tasker_error_response(exc: TaskerError, request_id: str) -> JSONResponse:
    """Answer a ``TaskerError`` by the table; 5xx answers are generic and logged."""
    status, code = status_for(exc)
    details: dict[str, Any] | None = None
    headers: dict[str, str] = {}
    if status >= 500:
        if status == 500:
            log.error(
                "request failed",
                exc_info=exc,
                extra={"request_id": request_id, "error_type": type(exc).__name__},
            )
        else:
            log.warning("database unavailable", extra={"request_id": request_id})
            headers["Retry-After"] = str(RETRY_AFTER_S)
        message = _GENERIC.get(status, _GENERIC[500])
    else:
        message = _one_line(str(exc))
        if isinstance(exc, TemplateError) and len(exc.problems) > 1:
            details = {"problems": list(exc.problems)}
    if isinstance(exc, DuplicateTask):
        details = {"task_uuid": exc.task_uuid}
    return error_response(status, code, message, request_id, details=details, headers=headers)


def _validation_response(exc: RequestValidationError, request_id: str) -> JSONResponse:
    """Bad JSON -> 400 JSON_ERROR; bad query/path -> 400 BAD_REQUEST; bad shape -> 422."""
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "JSON_ERROR", "Request body is not valid JSON", request_id)
    problems = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:]) or (first["loc"][0] if first["loc"] else "request")
    message = f"{where}: {first['msg']}"
    in_body = any(p["loc"][:1] == ["body"] for p in problems)
    if in_body:
        return error_response(
            422, "VALIDATION_ERROR", message, request_id, details={"errors": problems}
        )
    return error_response(400, "BAD_REQUEST", message, request_id, details={"errors": problems})


def install_error_handlers(app: Any) -> None:
    """Register the envelope handlers on a FastAPI app."""

    async def on_tasker_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TaskerError)
        return tasker_error_response(exc, request_id_of(request))

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return error_response(
            exc.status,
            exc.code,
            exc.message,
            request_id_of(request),
            details=exc.details,
            headers=exc.headers,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(exc, request_id_of(request))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 400:
            # FastAPI raises a bare 400 when the body parses as JSON text but not as values
            # (an integer longer than Python accepts, say).
            return error_response(
                400, "JSON_ERROR", "Request body could not be parsed", request_id_of(request)
            )
        code = _STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
        if status == 404:
            message = f"No route for {request.method} {request.url.path}"
        elif status == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail) if status < 500 else _GENERIC[500]
        headers = dict(exc.headers or {})
        return error_response(status, code, message, request_id_of(request), headers=headers)

    app.add_exception_handler(TaskerError, on_tasker_error)
    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
