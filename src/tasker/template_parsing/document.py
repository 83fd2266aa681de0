"""One YAML document to one ``TaskTemplate`` (templates.md §2, §5, §6, §7, §9), including the
checks that look at all steps together: names, dependencies, cycles, decisions, batches."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from tasker.domain.dag import find_cycle
from tasker.domain.template import (
    ALL_STEPS,
    EnvironmentOverride,
    IdentityStrategy,
    Lifecycle,
    StepOverride,
    StepTemplate,
    StepType,
    TaskTemplate,
)
from tasker.template_parsing.fields import Report, Section, Where, describe
from tasker.template_parsing.steps import (
    MAX_TIMEOUT_S,
    check_name,
    display_name,
    parse_retry,
    parse_step,
)

__all__ = ["parse_template", "template_label"]

TOP_KEYS = (
    "name",
    "namespace_name",
    "version",
    "description",
    "metadata",
    "system_dependencies",
    "domain_events",
    "input_schema",
    "steps",
    "environments",
    "lifecycle",
    "identity_strategy",
)
LEGACY_IGNORED = ("task_handler", "task_handler_class")
LIFECYCLE_KEYS = (
    "max_duration_minutes",
    "max_waiting_for_dependencies_minutes",
    "max_waiting_for_retry_minutes",
    "max_steps_in_process_minutes",
    "staleness_action",
    "auto_fail_on_timeout",
    "auto_dlq_on_timeout",
)
_NAMESPACE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,28}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_VERSION = 16


def template_label(raw: Any) -> str:
    """``namespace/name@version`` from raw data, with ``?`` for any part not usable yet."""
    if not isinstance(raw, dict):
        return "?/?@?"
    parts = [display_name(raw.get(key)) for key in ("namespace_name", "name", "version")]
    ns, name, version = (p if p and "/" not in p and "\\" not in p else "?" for p in parts)
    return f"{ns}/{name}@{version}"


def parse_template(report: Report, raw: dict[str, Any]) -> TaskTemplate | None:
    """Read one document; ``None`` if it has any error (all of them are in ``report``)."""
    root = Where()
    if "step_templates" in raw and "steps" not in raw:
        report.error(
            root.key("step_templates"),
            "legacy template format (step_templates) is not supported; use steps",
        )
        return None
    for key in LEGACY_IGNORED:
        if key in raw:
            report.warn(root.key(key), "legacy key from the Rails format, ignored")
    t = Section(report, root, raw, TOP_KEYS + LEGACY_IGNORED)
    name, namespace, version = _identity(t)
    steps = _parse_steps(t)
    template = TaskTemplate(
        name=name or "",
        namespace_name=namespace or "",
        version=version or "",
        steps=steps,
        description=t.text("description"),
        metadata=_parse_metadata(t),
        system_dependencies=_parse_system_dependencies(t),
        domain_events=_parse_domain_events(t),
        input_schema=t.schema("input_schema"),
        environments=_parse_environments(t, {s.name for s in steps}),
        lifecycle=_parse_lifecycle(t),
        identity_strategy=t.choice("identity_strategy", IdentityStrategy)
        or IdentityStrategy.STRICT,
    )
    return None if report.has_errors else template


def _identity(t: Section) -> tuple[str | None, str | None, str | None]:
    name = t.text("name", required=True)
    if name is not None and check_name(t.report, t.at("name"), name):
        if not _SNAKE.match(name):
            t.report.warn(t.at("name"), f'"{name}" is not snake_case (^[a-z][a-z0-9_]*$)')
    else:
        name = None
    namespace = t.text("namespace_name", required=True)
    if namespace is not None and not _NAMESPACE.match(namespace):
        t.report.error(
            t.at("namespace_name"),
            f'"{namespace}" must be 1-29 characters of letters, digits and _, '
            "starting with a letter or _ (it names the worker queue)",
        )
        namespace = None
    return name, namespace, _version(t)


def _version(t: Section) -> str | None:
    value = t.raw.get("version")
    where = Where(("version",))  # no label: the message starts with "version"
    if value is None:
        t.missing("version")
        return None
    if not isinstance(value, str):
        hint = "; quote it" if isinstance(value, int | float) else ""
        t.report.error(where, f'version must be a string like "1.0.0", got {describe(value)}{hint}')
        return None
    if len(value) > _MAX_VERSION or not _VERSION.match(value):
        t.report.error(
            where,
            f'version "{value}" must look like "1.0.0" (major.minor.patch, '
            f"at most {_MAX_VERSION} characters)",
        )
        return None
    return value


def _parse_steps(t: Section) -> tuple[StepTemplate, ...]:
    if "steps" not in t.raw:
        t.missing("steps")
        return ()
    raw_steps = t.raw["steps"]
    if not isinstance(raw_steps, list):
        t.wrong("steps", "a list (it may be empty)")
        return ()
    where = t.at("steps")
    parsed = [parse_step(t.report, where, i, raw) for i, raw in enumerate(raw_steps)]
    located = [(i, s) for i, s in enumerate(parsed) if s is not None]
    return _check_graph(t.report, where, located)


def _step_where(steps: Where, index: int, step: StepTemplate) -> Where:
    return steps.item(index, step.name)


def _check_graph(
    report: Report, steps: Where, located: Sequence[tuple[int, StepTemplate]]
) -> tuple[StepTemplate, ...]:
    """Template-wide step rules (templates.md §7); returns the steps with batch configs filled in
    from the batchable parent where the worker template has none."""
    first_index: dict[str, int] = {}
    for i, step in located:
        if step.name in first_index:
            report.error(
                _step_where(steps, i, step).key("name"),
                f'duplicate step name "{step.name}" (also steps[{first_index[step.name]}])',
            )
        else:
            first_index[step.name] = i
    by_name = {step.name: step for _, step in located}
    defined = ", ".join(by_name)
    graph: dict[str, list[str]] = {}
    for i, step in located:
        where = _step_where(steps, i, step).key("dependencies")
        graph.setdefault(step.name, [])
        for j, dep in enumerate(step.dependencies):
            if dep == step.name:
                report.error(where.item(j), f'step "{step.name}" depends on itself')
            elif dep not in by_name:
                report.error(
                    where.item(j),
                    f'step "{step.name}" depends on "{dep}", which this template does not '
                    f"define (defined: {defined})",
                )
            else:
                graph[step.name].append(dep)
    cycle = find_cycle(graph)
    if cycle:
        i = first_index[cycle[0]]
        report.error(
            _step_where(steps, i, by_name[cycle[0]]).key("dependencies"),
            "dependency cycle: " + " -> ".join(cycle) + " (each step depends on the next)",
        )
    located = [(i, _check_kind(report, _step_where(steps, i, s), s, by_name)) for i, s in located]
    _check_worker_names(report, steps, located)
    _warn_orphans(report, steps, located)
    return tuple(step for _, step in located)


def _check_kind(
    report: Report, where: Where, step: StepTemplate, by_name: dict[str, StepTemplate]
) -> StepTemplate:
    if step.type is StepType.DECISION and not step.dependencies:
        report.error(
            where.key("dependencies"),
            f'decision step "{step.name}" needs at least one dependency',
        )
    if step.type is StepType.BATCH_WORKER and step.batch_config is None:
        parents = [by_name[d] for d in step.dependencies if d in by_name]
        inherited = next(
            (
                p.batch_config
                for p in parents
                if p.type is StepType.BATCHABLE and p.batch_config is not None
            ),
            None,
        )
        if inherited is None:
            report.error(
                where.key("batch_config"),
                f'batch_worker step "{step.name}" has no batch_config, and neither has a '
                "batchable step it depends on",
            )
        else:
            step = replace(step, batch_config=inherited)
    config = step.batch_config
    if config is not None and config.worker_template:
        target = by_name.get(config.worker_template)
        if target is None or target.type is not StepType.BATCH_WORKER:
            kind = "is not defined" if target is None else f"is a {target.type.value} step"
            report.error(
                where.key("batch_config").key("worker_template"),
                f'"{config.worker_template}" {kind}; it must name a batch_worker step',
            )
    return step


def _check_worker_names(
    report: Report, steps: Where, located: Sequence[tuple[int, StepTemplate]]
) -> None:
    """A static step must not take a name that a generated worker would get."""
    workers = [s.name for _, s in located if s.type is StepType.BATCH_WORKER]
    for i, step in located:
        for worker in workers:
            if re.fullmatch(re.escape(worker) + r"_\d+", step.name):
                report.error(
                    _step_where(steps, i, step).key("name"),
                    f'"{step.name}" is the name a generated worker of batch_worker step '
                    f'"{worker}" would get ({worker}_<batch_id>); rename it',
                )


def _warn_orphans(
    report: Report, steps: Where, located: Sequence[tuple[int, StepTemplate]]
) -> None:
    if len(located) < 2:
        return
    needed = {dep for _, s in located for dep in s.dependencies}
    for i, step in located:
        if not step.dependencies and step.name not in needed:
            report.warn(
                _step_where(steps, i, step),
                "orphan step: it depends on nothing and nothing depends on it",
            )


def _parse_metadata(t: Section) -> dict[str, Any] | None:
    raw = t.mapping("metadata")
    if raw is None or t.json("metadata") is None:
        return None
    m = Section(t.report, t.at("metadata"), raw, raw)  # extra keys are common and fine
    m.text("author")
    m.text("documentation_url")
    m.string_list("tags")
    for key in ("created_at", "updated_at"):
        stamp = m.text(key)
        if stamp is not None and not _is_rfc3339(stamp):
            t.report.warn(m.at(key), f'"{stamp}" is not an RFC 3339 timestamp')
    return raw


def _is_rfc3339(stamp: str) -> bool:
    if "T" not in stamp.upper():
        return False
    try:
        parsed = datetime.fromisoformat(stamp.replace("z", "Z"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _parse_system_dependencies(t: Section) -> dict[str, Any]:
    result: dict[str, Any] = {"primary": "default", "secondary": []}
    raw = t.mapping("system_dependencies")
    if raw is not None:
        d = Section(t.report, t.at("system_dependencies"), raw, ("primary", "secondary"))
        result["primary"] = d.text("primary") or "default"
        result["secondary"] = list(d.string_list("secondary") or [])
    return result


def _parse_domain_events(t: Section) -> tuple[dict[str, Any], ...]:
    events: list[dict[str, Any]] = []
    for i, raw in enumerate(t.sequence("domain_events") or []):
        where = t.at("domain_events").item(i)
        if not isinstance(raw, dict):
            t.report.error(where, f"an event must be a mapping, got {describe(raw)}")
            continue
        e = Section(t.report, where, raw, ("name", "description", "schema"))
        name = e.text("name", required=True)
        event: dict[str, Any] = {"name": name, "description": e.text("description")}
        if e.has("schema"):
            event["schema"] = e.schema("schema")
        if name is not None:
            events.append(event)
    return tuple(events)


def _parse_lifecycle(t: Section) -> Lifecycle | None:
    raw = t.mapping("lifecycle")
    if raw is None:
        return None
    c = Section(t.report, t.at("lifecycle"), raw, LIFECYCLE_KEYS)
    return Lifecycle(
        max_duration_minutes=c.integer("max_duration_minutes", 1, 43_200),
        max_waiting_for_dependencies_minutes=c.integer(
            "max_waiting_for_dependencies_minutes", 1, 10_080
        ),
        max_waiting_for_retry_minutes=c.integer("max_waiting_for_retry_minutes", 1, 10_080),
        max_steps_in_process_minutes=c.integer("max_steps_in_process_minutes", 1, 10_080),
        staleness_action=c.words("staleness_action", ("dlq", "error", "none"), "dlq"),
        auto_fail_on_timeout=c.flag("auto_fail_on_timeout"),
        auto_dlq_on_timeout=c.flag("auto_dlq_on_timeout"),
    )


def _parse_environments(t: Section, step_names: set[str]) -> dict[str, EnvironmentOverride]:
    environments: dict[str, EnvironmentOverride] = {}
    raw: dict[Any, Any] = t.mapping("environments") or {}  # YAML keys may be any scalar
    for env, body in raw.items():
        where = t.at("environments").key(str(env))
        if not isinstance(env, str):
            t.report.error(where, f"environment name must be a string, got {describe(env)}")
            continue
        if not isinstance(body, dict):
            if body is not None:
                t.report.error(where, f"must be a mapping, got {describe(body)}")
            continue
        e = Section(t.report, where, body, ("steps",))
        overrides = [
            _parse_override(e, i, raw, step_names)
            for i, raw in enumerate(e.sequence("steps") or [])
        ]
        environments[env] = EnvironmentOverride(steps=tuple(o for o in overrides if o))
    return environments


def _parse_override(e: Section, index: int, raw: Any, step_names: set[str]) -> StepOverride | None:
    steps = e.at("steps")
    if not isinstance(raw, dict):
        e.report.error(steps.item(index), f"an override must be a mapping, got {describe(raw)}")
        return None
    where = steps.item(index, display_name(raw.get("name")))
    o = Section(e.report, where, raw, ("name", "timeout_seconds", "retry", "handler"))
    name = o.text("name", required=True)
    if name is not None and name != ALL_STEPS and name not in step_names:
        e.report.warn(o.at("name"), f'no step "{name}" in this template; override ignored')
    handler = o.mapping("handler") or {}
    h = Section(e.report, o.at("handler"), handler, ("initialization",))
    initialization = h.mapping("initialization") or {}
    if h.json("initialization") is None:
        initialization = {}
    retry = parse_retry(e.report, o.at("retry"), o.mapping("retry") or {})
    timeout = o.integer("timeout_seconds", 1, MAX_TIMEOUT_S)
    if name is None:
        return None
    return StepOverride(
        name=name, timeout_seconds=timeout, retry=retry, initialization=initialization
    )
