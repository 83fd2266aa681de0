"""What every route needs: the runtime, checked path ids, safe text, timestamps, permissions.

Value rules live here so each route states them in one line and every route answers them the
same way: 400 ``BAD_REQUEST`` (or ``INVALID_UUID``) in the envelope.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from tasker.api.auth import PERMISSION_KEY
from tasker.api.errors import ApiProblem
from tasker.api.schemas import ErrorEnvelope
from tasker.api.views import format_ts
from tasker.runtime import Tasker

__all__ = [
    "ERROR_RESPONSES",
    "TaskerDep",
    "UuidPath",
    "check_json_text",
    "check_text",
    "format_ts",
    "get_tasker",
    "now",
    "operator_name",
    "parse_uuid",
    "protected",
]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Bad request (value rule, query parameter, JSON syntax)",
        401: "Missing or invalid credentials",
        403: "Permission missing",
        404: "Not found",
        413: "Body too large",
        415: "Body is not JSON",
        422: "Body has the wrong shape",
        503: "Database unavailable",
    }.items()
}


def protected(permission: str) -> dict[str, Any]:
    """``openapi_extra`` of a route that needs ``permission`` (read by the auth layer)."""
    return {
        PERMISSION_KEY: permission,
        "security": [{"ApiKeyAuth": []}, {"BearerAuth": []}],
    }


def get_tasker(request: Request) -> Tasker:
    """The runtime this app serves."""
    tasker: Tasker = request.app.state.tasker
    return tasker


TaskerDep = Annotated[Tasker, Depends(get_tasker)]
"""A route parameter that receives the runtime."""

UuidPath = Annotated[str, Path(json_schema_extra={"format": "uuid"})]
"""A path id: documented as a UUID, checked by ``parse_uuid`` (400 in the envelope, not 422)."""


def now() -> datetime:
    return datetime.now(UTC)


def parse_uuid(text: str, *, what: str = "", code: str = "INVALID_UUID") -> str:
    """The canonical form of a path UUID.

    Args:
        text: the path segment.
        what: ``"task"``/``"step"`` for the step routes' wording ("Invalid task UUID format").
        code: ``INVALID_UUID`` (task routes) or ``BAD_REQUEST`` (step routes), rest-api.md §1.

    Raises:
        ApiProblem: 400, not a UUID.
    """
    try:
        return str(uuid.UUID(text))
    except ValueError:
        message = f"Invalid {what} UUID format" if what else f"Invalid UUID: {text[:100]}"
        raise ApiProblem(400, code, message) from None


def check_text(
    value: str | None, field: str, *, max_length: int, required: bool = False
) -> str | None:
    """A string field that is storable everywhere: within its length, no NUL, valid Unicode.

    Raises:
        ApiProblem: 400 naming the field.
    """
    if value is None:
        if required:
            raise ApiProblem(400, "BAD_REQUEST", f"{field} is required")
        return None
    if not value.strip() and required:
        raise ApiProblem(400, "BAD_REQUEST", f"{field} cannot be empty")
    if len(value) > max_length:
        raise ApiProblem(400, "BAD_REQUEST", f"{field} must be at most {max_length} characters")
    _storable(value, field)
    return value


def _storable(value: str, where: str) -> None:
    where = where if len(where) <= 200 else where[:200] + "..."
    if "\x00" in value:
        raise ApiProblem(400, "BAD_REQUEST", f"{where} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiProblem(
            400, "BAD_REQUEST", f"{where} contains an unpaired UTF-16 surrogate"
        ) from None


def check_json_text(value: Any, where: str) -> None:
    """Refuse strings (keys included) that a database cannot store, anywhere in a JSON value.

    PostgreSQL refuses NUL in text and ``\\u0000`` in jsonb, and no UTF-8 encoder takes a lone
    surrogate: found here they are a 400, not a driver error (reliability.md R9.5).
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            _storable(item, path)
        elif isinstance(item, Mapping):
            for key, child in item.items():
                _storable(str(key), f"{path} key")
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))


def operator_name(request: Request, given: str | None) -> str:
    """Who did it: the body's value, else the authenticated subject, else ``api``."""
    if given:
        return given
    principal = getattr(request.state, "principal", None)
    return str(getattr(principal, "subject", "") or "api")
