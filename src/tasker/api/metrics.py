"""A handful of counters and gauges in Prometheus text format (events-observability.md §4).

Written by hand: the API needs a few counters and scrape-time gauges, not a metrics library.
Counters live in this process; gauges (tasks by state, pending DLQ entries) are read from the
database at scrape time, so every API process reports the same numbers for them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["COUNTERS", "ApiMetrics", "Sample", "render"]

COUNTERS: Mapping[str, str] = {
    "tasker_api_requests_total": "HTTP requests answered, by method, route template and status",
    "tasker_tasks_requests_total": "Task creations accepted through the API",
    "tasker_auth_requests_total": "Requests that authenticated, by method (api_key, jwt)",
    "tasker_auth_failures_total": "Requests refused with 401, by reason",
    "tasker_permission_denials_total": "Requests refused with 403, by required permission",
}

LabelSet = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One gauge value read at scrape time."""

    name: str
    help: str
    value: float
    labels: Mapping[str, str] | None = None


class ApiMetrics:
    """Thread-safe counters of one API process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[LabelSet, float]] = {name: {} for name in COUNTERS}

    def inc(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0) -> None:
        """Add ``value`` to counter ``name`` (one of ``COUNTERS``) with these labels."""
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + value

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value of one counter series (0 when never incremented)."""
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            return self._values[name].get(key, 0.0)

    def snapshot(self) -> dict[str, dict[LabelSet, float]]:
        with self._lock:
            return {name: dict(series) for name, series in self._values.items()}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(metrics: ApiMetrics, gauges: Iterable[Sample]) -> str:
    """The exposition text: every counter (with HELP/TYPE even when empty), then the gauges."""
    lines: list[str] = []
    for name, series in metrics.snapshot().items():
        lines.append(f"# HELP {name} {COUNTERS[name]}")
        lines.append(f"# TYPE {name} counter")
        for labels, value in sorted(series.items()):
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
    described: set[str] = set()
    for sample in gauges:
        if sample.name not in described:
            described.add(sample.name)
            lines.append(f"# HELP {sample.name} {sample.help}")
            lines.append(f"# TYPE {sample.name} gauge")
        pairs = sorted((sample.labels or {}).items())
        lines.append(f"{sample.name}{_labels(pairs)} {_number(sample.value)}")
    return "\n".join(lines) + "\n"
