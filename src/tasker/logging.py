"""Logging helpers of the original worker (python-api.md §10, events-observability.md §5).

``log_info("Payment captured", {"task_uuid": ...})`` logs to the standard ``tasker`` logger. The
message stays a fixed phrase; the fields travel as ``record.fields`` (stringified, known ids
first) for a structured formatter to render. Plain ``logging`` works just as well in handlers.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

__all__ = [
    "TRACE",
    "LogContext",
    "log_debug",
    "log_error",
    "log_info",
    "log_trace",
    "log_warn",
]

TRACE = 5
"""Level below DEBUG for per-message detail."""

logging.addLevelName(TRACE, "TRACE")

_logger = logging.getLogger("tasker")
_FIELD_ORDER = ("correlation_id", "task_uuid", "step_uuid", "namespace", "operation")


@dataclass(frozen=True)
class LogContext:
    """The usual fields of a log line; all optional."""

    correlation_id: Any = None
    task_uuid: Any = None
    step_uuid: Any = None
    namespace: str | None = None
    operation: str | None = None


Fields: TypeAlias = dict[str, Any] | LogContext | None


def _ordered_fields(fields: Fields) -> dict[str, str]:
    """Stringified fields, ``correlation_id`` and entity ids first; ``None`` values dropped."""
    raw = asdict(fields) if isinstance(fields, LogContext) else dict(fields or {})
    keys = [k for k in _FIELD_ORDER if k in raw] + [k for k in raw if k not in _FIELD_ORDER]
    return {key: str(raw[key]) for key in keys if raw[key] is not None}


def _log(level: int, message: str, fields: Fields) -> None:
    if _logger.isEnabledFor(level):
        # stacklevel 3: the record points at the handler that called log_*, not at this module.
        _logger.log(level, message, extra={"fields": _ordered_fields(fields)}, stacklevel=3)


def log_error(message: str, fields: Fields = None) -> None:
    """Log at ERROR."""
    _log(logging.ERROR, message, fields)


def log_warn(message: str, fields: Fields = None) -> None:
    """Log at WARNING."""
    _log(logging.WARNING, message, fields)


def log_info(message: str, fields: Fields = None) -> None:
    """Log at INFO."""
    _log(logging.INFO, message, fields)


def log_debug(message: str, fields: Fields = None) -> None:
    """Log at DEBUG."""
    _log(logging.DEBUG, message, fields)


def log_trace(message: str, fields: Fields = None) -> None:
    """Log at TRACE (below DEBUG)."""
    _log(TRACE, message, fields)
