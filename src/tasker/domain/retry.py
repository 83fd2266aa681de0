"""Retry decisions and backoff delays as pure functions (execution.md §6-7, R5.1)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from tasker.domain.template import BackoffKind, RetryPolicy

__all__ = ["backoff_delay_s", "policy_delay_s", "requested_delay_s", "should_retry"]


def _fibonacci(n: int) -> int:
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return a


def policy_delay_s(policy: RetryPolicy, attempts: int) -> float:
    """Delay before the next run, before jitter: ``attempts`` counts runs made so far (≥ 1)."""
    n = max(attempts, 1)
    base = policy.backoff_base_ms
    match policy.backoff:
        case BackoffKind.NONE:
            delay_ms = 0.0
        case BackoffKind.LINEAR:
            delay_ms = float(base * n)
        case BackoffKind.EXPONENTIAL:
            delay_ms = float(base * 2 ** min(n - 1, 62))
        case _:
            delay_ms = float(base * _fibonacci(min(n, 90)))
    return min(delay_ms, float(policy.max_backoff_ms)) / 1000.0


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    if isinstance(value, str):
        try:
            return max(float(value), 0.0)
        except ValueError:
            return None
    return None


def _retry_after_header(headers: Mapping[str, Any], now: datetime) -> float | None:
    for key, value in headers.items():
        if key.lower() != "retry-after":
            continue
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        if isinstance(value, str):
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max((when - now).total_seconds(), 0.0)
    return None


def requested_delay_s(document: Mapping[str, Any], now: datetime) -> float | None:
    """A delay the failed run asked for itself (execution.md §7), or ``None``.

    Precedence: ``orchestration_metadata.headers["Retry-After"]``, then
    ``backoff_hint.delay_seconds``, then ``metadata.retry_after`` / ``retry_after_seconds``.
    """
    orchestration = document.get("orchestration_metadata") or {}
    if isinstance(orchestration, Mapping):
        headers = orchestration.get("headers") or {}
        if isinstance(headers, Mapping):
            header = _retry_after_header(headers, now)
            if header is not None:
                return header
        hint = orchestration.get("backoff_hint") or {}
        if isinstance(hint, Mapping):
            hinted = _seconds(hint.get("delay_seconds"))
            if hinted is not None:
                return hinted
    metadata = document.get("metadata") or {}
    if isinstance(metadata, Mapping):
        for key in ("retry_after", "retry_after_seconds"):
            asked = _seconds(metadata.get(key))
            if asked is not None:
                return asked
    return None


def backoff_delay_s(
    policy: RetryPolicy,
    attempts: int,
    document: Mapping[str, Any],
    now: datetime,
    *,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before the next run of a step that just failed.

    A delay requested by the run wins (capped at ``max_backoff_ms``, no jitter); otherwise the
    step's policy, capped, with ±10 % jitter.
    """
    cap = policy.max_backoff_ms / 1000.0
    asked = requested_delay_s(document, now)
    if asked is not None:
        return min(asked, cap)
    delay = policy_delay_s(policy, attempts)
    if jitter and delay > 0:
        delay *= (rng or random).uniform(0.9, 1.1)
    return max(delay, 0.0)


def should_retry(
    *, result_retryable: bool, step_retryable: bool, attempts: int, max_attempts: int
) -> bool:
    """Canonical retry decision (execution.md §6 step 4)."""
    return result_retryable and step_retryable and attempts < max_attempts


def next_retry_at(now: datetime, delay_s: float) -> datetime:
    """When the next run may start."""
    return now + timedelta(seconds=delay_s)
