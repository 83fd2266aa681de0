"""One step of a template (templates.md §3, §4): handler, type, dependencies, retry, batch
config and events. Checks that need the other steps live in ``document``."""

from __future__ import annotations

import re
from typing import Any

from tasker.domain.template import (
    BackoffKind,
    BatchConfig,
    EventDeclaration,
    FailureStrategy,
    HandlerSpec,
    RetryPolicy,
    StepTemplate,
    StepType,
)
from tasker.template_parsing.fields import Report, Section, Where, describe

__all__ = ["check_name", "display_name", "parse_retry", "parse_step", "retry_advisories"]

STEP_KEYS = (
    "name",
    "description",
    "handler",
    "type",
    "step_type",
    "dependencies",
    "depends_on",
    "retry",
    "timeout_seconds",
    "system_dependency",
    "publishes_events",
    "batch_config",
    "result_schema",
    "composition",
    "lifecycle",  # seen in the original's batch fixtures; it ignores it, and so do we
)
HANDLER_KEYS = ("callable", "method", "resolver", "initialization")
RETRY_KEYS = ("retryable", "max_attempts", "backoff", "backoff_base_ms", "max_backoff_ms")
LEGACY_RETRY_KEYS = ("limit", "initial_delay", "max_delay")
BATCH_KEYS = (
    "worker_template",
    "batch_size",
    "parallelism",
    "cursor_field",
    "failure_strategy",
    "checkpoint_interval",  # shown in the original's docs, used by nothing
)
EVENT_KEYS = ("name", "description", "schema", "condition", "delivery_mode", "publisher")
EVENT_CONDITIONS = ("success", "failure", "retryable_failure", "permanent_failure", "always")
DELIVERY_MODES = ("durable", "fast", "broadcast")

MAX_NAME = 255
MAX_CALLABLE = 500
MAX_MS = 3_600_000
MAX_TIMEOUT_S = 2_147_483_647  # fits the int32 columns of both backends
_EVENT_NAME_CHARS = re.compile(r"^[a-z0-9_.]+$")


def check_name(report: Report, where: Where, name: str) -> bool:
    """reliability.md R7.1: 1-255 printable characters, no path separator. Reports, and says
    whether the name is usable."""
    if not name:
        problem = "must not be empty"
    elif len(name) > MAX_NAME:
        problem = f"is {len(name)} characters long; at most {MAX_NAME}"
    elif not name.isprintable():
        problem = f"{name!r} contains a control or non-printable character"
    elif "/" in name or "\\" in name:
        problem = f'"{name}" contains a path separator (/ or \\)'
    else:
        return True
    report.error(where, f"name {problem}")
    return False


def display_name(value: Any) -> str | None:
    """``value`` if it can label a step in messages (a valid name), else ``None``."""
    ok = isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable()
    return value if ok else None


def parse_step(report: Report, steps: Where, index: int, raw: Any) -> StepTemplate | None:
    """Read ``steps[index]``; ``None`` when it has no usable name (the problems are in
    ``report``). A step with other errors is still returned, so that the template-wide checks
    know its name and do not report its dependents as broken too."""
    if not isinstance(raw, dict):
        report.error(steps.item(index), f"a step must be a mapping, got {describe(raw)}")
        return None
    where = steps.item(index, display_name(raw.get("name")))
    s = Section(report, where, raw, STEP_KEYS)
    name = s.text("name", required=True)
    if name is not None and not check_name(report, s.at("name"), name):
        name = None
    handler = _parse_handler(s)
    step_type = _parse_type(s)
    dependencies = _parse_dependencies(s)
    retry = RetryPolicy(**parse_retry(report, s.at("retry"), s.mapping("retry") or {}))
    retry_advisories(report, s.at("retry"), retry)
    batch = s.mapping("batch_config")
    step = StepTemplate(
        name=name or "",
        handler=handler or HandlerSpec(callable=""),
        type=step_type,
        dependencies=dependencies,
        retry=retry,
        timeout_seconds=s.integer("timeout_seconds", 1, MAX_TIMEOUT_S),
        description=s.text("description"),
        batch_config=None if batch is None else _parse_batch(report, s.at("batch_config"), batch),
        publishes_events=_parse_events(s),
        system_dependency=s.text("system_dependency"),
        result_schema=s.schema("result_schema", strict=False),
        composition=s.json("composition"),
    )
    return step if name is not None else None


def _parse_handler(s: Section) -> HandlerSpec | None:
    raw = s.mapping("handler", required=True)
    if raw is None:
        return None
    h = Section(s.report, s.at("handler"), raw, HANDLER_KEYS)
    value = raw.get("callable")
    if isinstance(value, str) and not value.strip():
        s.report.error(h.at("callable"), "is empty; name the handler to run")
        return None
    callable_ = h.text("callable", required=True, max_len=MAX_CALLABLE)
    initialization = h.mapping("initialization")
    if initialization is not None and h.json("initialization") is None:
        initialization = None
    if callable_ is None:
        return None
    return HandlerSpec(
        callable=callable_,
        method=h.text("method") or "call",
        resolver=h.text("resolver"),
        initialization=initialization or {},
    )


def _one_of(s: Section, key: str, alias: str) -> str:
    """The key a value was given under, rejecting a value given under both spellings."""
    if s.has(key) and s.has(alias):
        s.report.error(s.at(alias), f'both "{key}" and "{alias}" are given; keep only "{key}"')
    return alias if s.has(alias) and not s.has(key) else key


def _parse_type(s: Section) -> StepType:
    key = _one_of(s, "type", "step_type")
    value = s.raw.get(key)
    if value == "deferred":
        s.report.warn(s.at(key), 'type "deferred" is read as "deferred_convergence"; write that')
        return StepType.DEFERRED_CONVERGENCE
    return s.choice(key, StepType, StepType.STANDARD) or StepType.STANDARD


def _parse_dependencies(s: Section) -> tuple[str, ...]:
    key = _one_of(s, "dependencies", "depends_on")
    names = s.string_list(key) or []
    unique = tuple(dict.fromkeys(names))
    if len(unique) != len(names):
        s.report.warn(s.at(key), "lists a step more than once; duplicates ignored")
    return unique


def parse_retry(report: Report, where: Where, raw: dict[str, Any]) -> dict[str, Any]:
    """The retry keys present in ``raw``, checked against the hard limits and with the legacy
    keys translated; the caller decides what absent keys mean (defaults or "keep")."""
    r = Section(report, where, raw, RETRY_KEYS + LEGACY_RETRY_KEYS)
    found: dict[str, Any] = {}
    retryable = r.flag("retryable")
    attempts = r.integer("max_attempts", 0, 1000)
    backoff = r.choice("backoff", BackoffKind)
    base = r.integer("backoff_base_ms", 0, MAX_MS)
    cap = r.integer("max_backoff_ms", 0, MAX_MS)
    if r.has("limit"):
        if attempts is None and not r.has("max_attempts"):
            report.warn(r.at("limit"), 'legacy key, read as "max_attempts"; rename it')
            attempts = r.integer("limit", 0, 1000)
        else:
            report.warn(r.at("limit"), 'legacy key ignored because "max_attempts" is given')
    base = _legacy_seconds(r, "initial_delay", "backoff_base_ms", base)
    cap = _legacy_seconds(r, "max_delay", "max_backoff_ms", cap)
    for key, value in (
        ("retryable", retryable),
        ("max_attempts", attempts),
        ("backoff", backoff),
        ("backoff_base_ms", base),
        ("max_backoff_ms", cap),
    ):
        if value is not None:
            found[key] = value
    return found


def _legacy_seconds(r: Section, legacy: str, key: str, current: int | None) -> int | None:
    """``initial_delay`` / ``max_delay`` are seconds; they count only when the ms key is absent."""
    if not r.has(legacy):
        return current
    if r.has(key):
        r.report.warn(r.at(legacy), f'legacy key ignored because "{key}" is given')
        return current
    value = r.raw[legacy]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        r.wrong(legacy, "a number of seconds ≥ 0")
        return current
    ms = round(value * 1000)
    if ms > MAX_MS:
        r.report.error(r.at(legacy), f"must be at most {MAX_MS // 1000} seconds, got {value}")
        return current
    r.report.warn(r.at(legacy), f'legacy key (seconds), read as "{key}: {ms}"; rename it')
    return ms


def retry_advisories(report: Report, where: Where, retry: RetryPolicy) -> None:
    """Warn about values the original declares out of range but accepts (templates.md §4)."""
    if not 1 <= retry.max_attempts <= 100:
        report.warn(
            where.key("max_attempts"),
            f"{retry.max_attempts} is outside the recommended range 1..100; accepted"
            + (" (0 runs the step once, never retried)" if retry.max_attempts == 0 else ""),
        )
    if retry.backoff_base_ms < 100:
        report.warn(
            where.key("backoff_base_ms"),
            f"{retry.backoff_base_ms} is below the recommended minimum 100; accepted",
        )
    if retry.max_backoff_ms < 1000:
        report.warn(
            where.key("max_backoff_ms"),
            f"{retry.max_backoff_ms} is below the recommended minimum 1000; accepted",
        )
    if retry.max_backoff_ms < retry.backoff_base_ms:
        report.warn(
            where.key("max_backoff_ms"),
            f"{retry.max_backoff_ms} is below backoff_base_ms {retry.backoff_base_ms}; "
            "every delay is capped at it",
        )


def _parse_batch(report: Report, where: Where, raw: dict[str, Any]) -> BatchConfig | None:
    b = Section(report, where, raw, BATCH_KEYS)
    worker_template = b.text("worker_template", required=True)
    if worker_template is not None and not check_name(
        report, b.at("worker_template"), worker_template
    ):
        worker_template = None
    config = BatchConfig(
        worker_template=worker_template or "",
        batch_size=b.integer("batch_size", 1, 100_000, 1000) or 1000,
        parallelism=b.integer("parallelism", 1, 1000, 10) or 10,
        cursor_field=b.text("cursor_field", max_len=MAX_NAME) or "id",
        failure_strategy=b.choice("failure_strategy", FailureStrategy)
        or FailureStrategy.CONTINUE_ON_FAILURE,
    )
    if raw.get("cursor_field") == "":
        report.error(b.at("cursor_field"), "must not be empty")
    return config if worker_template is not None else None


def _parse_events(s: Section) -> tuple[EventDeclaration, ...]:
    events: list[EventDeclaration] = []
    for i, raw in enumerate(s.sequence("publishes_events") or []):
        where = s.at("publishes_events").item(i)
        if not isinstance(raw, dict):
            s.report.error(where, f"an event must be a mapping, got {describe(raw)}")
            continue
        e = Section(s.report, where, raw, EVENT_KEYS)
        name = e.text("name", required=True)
        if name is not None and not _check_event_name(s.report, e.at("name"), name):
            name = None
        description = e.text("description", required=True)
        schema = e.schema("schema", required=True)
        condition = e.words("condition", EVENT_CONDITIONS, "success")
        delivery_mode = e.words("delivery_mode", DELIVERY_MODES, "durable")
        publisher = e.text("publisher")
        if name is not None and description is not None and schema is not None:
            events.append(
                EventDeclaration(name, description, schema, condition, delivery_mode, publisher)
            )
    return tuple(events)


def _check_event_name(report: Report, where: Where, name: str) -> bool:
    """templates.md §3.3: dotted ``namespace.action``; odd characters only warn."""
    if "." not in name:
        problem = "must contain a dot (namespace.action)"
    elif name.startswith(".") or name.endswith("."):
        problem = "must not start or end with a dot"
    elif ".." in name:
        problem = "must not contain two dots in a row"
    else:
        if not _EVENT_NAME_CHARS.match(name):
            report.warn(where, f'event name "{name}" has characters outside a-z 0-9 _ .')
        return True
    report.error(where, f'event name "{name}" {problem}')
    return False
