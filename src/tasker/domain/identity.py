"""Task identity hashes and the JSON limits every context must respect (execution.md §2-3)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from tasker.domain.template import IdentityStrategy
from tasker.errors import InvalidContext

__all__ = ["JsonLimits", "canonical_json", "check_json_limits", "identity_hash"]


def canonical_json(value: Any) -> str:
    """Keys sorted recursively, no insignificant whitespace, array order kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def identity_hash(
    named_task_uuid: str,
    strategy: IdentityStrategy,
    context: Any,
    idempotency_key: str | None,
) -> str:
    """The hash that makes duplicate task creation impossible (execution.md §3).

    Raises:
        InvalidContext: a ``caller_provided`` template got no ``idempotency_key``.
    """
    if idempotency_key is not None:
        parts = [named_task_uuid, "key", idempotency_key]
    elif strategy is IdentityStrategy.CALLER_PROVIDED:
        raise InvalidContext(
            "idempotency_key is required when named task uses CallerProvided identity strategy"
        )
    elif strategy is IdentityStrategy.ALWAYS_UNIQUE:
        return str(uuid.uuid4())
    else:
        parts = [named_task_uuid, canonical_json(context)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class JsonLimits:
    """Bounds on user JSON (execution.md §2): size, depth, fan-out, string length."""

    max_bytes = 1_048_576
    max_depth = 10
    max_items = 1000
    max_string = 10_000


def _walk(value: Any, path: str, depth: int, what: str) -> None:
    if depth > JsonLimits.max_depth:
        raise InvalidContext(f"{what} at {path} is nested deeper than {JsonLimits.max_depth}")
    if isinstance(value, dict):
        _walk_object(value, path, depth, what)
    elif isinstance(value, list):
        if len(value) > JsonLimits.max_items:
            raise InvalidContext(f"{what} at {path} has more than {JsonLimits.max_items} items")
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", depth + 1, what)
    elif isinstance(value, str):
        if len(value) > JsonLimits.max_string:
            raise InvalidContext(f"{what} at {path} is a string longer than 10000 characters")
    elif value is not None and not isinstance(value, bool | int | float):
        raise InvalidContext(f"{what} at {path} is not JSON (a {type(value).__name__})")


def _walk_object(value: dict[Any, Any], path: str, depth: int, what: str) -> None:
    if len(value) > JsonLimits.max_items:
        raise InvalidContext(f"{what} at {path} has more than {JsonLimits.max_items} keys")
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidContext(f"{what} at {path} has a non-string key {key!r}")
        if len(key) > JsonLimits.max_string:
            raise InvalidContext(f"{what} at {path} has a key longer than 10000 characters")
        _walk(item, f"{path}.{key}", depth + 1, what)


def check_json_limits(value: Any, what: str = "context", *, require_object: bool = True) -> str:
    """Check a user payload and return its JSON text.

    Raises:
        InvalidContext: not an object (when required), not JSON, or over a limit; the message
            gives the JSON path.
    """
    if require_object and not isinstance(value, dict):
        raise InvalidContext(f"{what} must be a JSON object, got {type(value).__name__}")
    _walk(value, "$", 0, what)
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:
        raise InvalidContext(f"{what} is not valid JSON: {exc}") from None
    size = len(text.encode())
    if size > JsonLimits.max_bytes:
        raise InvalidContext(f"{what} is {size} bytes, over the limit of {JsonLimits.max_bytes}")
    return text
