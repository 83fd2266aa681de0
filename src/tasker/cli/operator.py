"""Operator commands: ``tasker task|step|dlq|analytics|template|health`` (rest-api.md §6).

Each command talks to a server (``--api-url``, env ``TASKER_API_URL``; credentials
``TASKER_API_KEY`` or ``TASKER_AUTH_TOKEN``) or straight to a database (``--database-url``);
the server wins when both are set. Tables by default, ``--json`` for one JSON document on
stdout. Errors are ``TaskerError``s: ``tasker``'s entry point prints one line and exits 1.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from tasker.cli.backends import Backend, open_backend
from tasker.domain.model import TaskRequest
from tasker.errors import DuplicateTask

__all__ = ["analytics", "dlq", "health", "step", "task", "template"]

F = TypeVar("F", bound=Callable[..., Any])
JSONObject = dict[str, Any]

STEP_ACTIONS = ("reset_for_retry", "resolve_manually", "complete_manually")
DLQ_STATUSES = ("pending", "manually_resolved", "permanently_failed", "cancelled")


def connection_options(func: F) -> F:
    """``--api-url``/``--url``, ``--database-url``, credentials and ``--json``."""
    options = [
        click.option(
            "--api-url",
            "--url",
            "api_url",
            envvar="TASKER_API_URL",
            show_envvar=True,
            default=None,
            help="A tasker server, e.g. http://127.0.0.1:8080 (wins over --database-url).",
        ),
        click.option(
            "--database-url",
            envvar="TASKER_DATABASE_URL",
            show_envvar=True,
            default=None,
            help="Work on the database directly: sqlite:///path.db or postgresql://…",
        ),
        click.option(
            "--api-key",
            envvar="TASKER_API_KEY",
            show_envvar=True,
            default=None,
            help="API key sent to the server.",
        ),
        click.option(
            "--auth-token",
            envvar="TASKER_AUTH_TOKEN",
            show_envvar=True,
            default=None,
            help="JWT sent to the server as a bearer token (wins over --api-key).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def backend_of(params: Mapping[str, Any]) -> Iterator[Backend]:
    """The backend the connection options choose, closed on exit."""
    backend = open_backend(
        params["api_url"],
        params["database_url"],
        api_key=params["api_key"],
        token=params["auth_token"],
    )
    try:
        yield backend
    finally:
        backend.close()


def _json_arg(text: str | None, flag: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=flag) from None


def _emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def _table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    # Piped output keeps whole ids: a narrow default width would cut them with an ellipsis.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _fields(title: str, document: Mapping[str, Any], keys: Sequence[str]) -> None:
    rows = []
    for key in keys:
        value = document.get(key)
        rows.append(
            (key, json.dumps(value, default=str) if isinstance(value, dict | list) else value)
        )
    _table(title, ("field", "value"), rows)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli-operator"


# -- task ---------------------------------------------------------------------------------------


@click.group()
def task() -> None:
    """Create, inspect, list and cancel tasks."""


@task.command("create")
@click.argument("name")
@click.option("--namespace", default="default", show_default=True)
@click.option("--version", "version", default="1.0.0", show_default=True)
@click.option("--context", "context_json", default="{}", help="The task input, a JSON object.")
@click.option("--reason", default="Task requested from the tasker CLI", show_default=True)
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--idempotency-key", default=None, help="Identity = template + this key.")
@connection_options
def create_task(
    name: str,
    namespace: str,
    version: str,
    context_json: str,
    reason: str,
    priority: int,
    tags: tuple[str, ...],
    idempotency_key: str | None,
    **params: Any,
) -> None:
    """Create a task of template NAME and print its uuid (--json: the whole task).

    A task with the same identity already existing is an error naming that task's uuid.
    """
    request = TaskRequest(
        name=name,
        namespace=namespace,
        version=version,
        context=_json_arg(context_json, "--context"),
        initiator="tasker-cli",
        source_system="cli",
        reason=reason,
        tags=tags,
        priority=priority,
        idempotency_key=idempotency_key,
    )
    try:
        with backend_of(params) as backend:
            created = backend.create_task(request)
    except DuplicateTask as exc:
        click.echo(
            f"error: duplicate task: a task with this identity already exists: {exc.task_uuid}",
            err=True,
        )
        sys.exit(1)
    if params["as_json"]:
        _emit_json(created)
    else:
        click.echo(created["task_uuid"])


def _print_task(document: Mapping[str, Any]) -> None:
    title = (
        f"{document['namespace']}/{document['name']}@{document['version']}  "
        f"{document['task_uuid']}  [{document['status']}]"
    )
    _table(
        title,
        ("step", "state", "attempts", "ready", "step uuid"),
        (
            (
                s["name"],
                s["current_state"],
                f"{s['attempts']}/{s['max_attempts']}",
                "yes" if s.get("ready_for_execution") else "",
                s["workflow_step_uuid"],
            )
            for s in document.get("steps") or ()
        ),
    )
    click.echo(
        f"status: {document['status']}  execution: {document.get('execution_status')}  "
        f"complete: {document.get('completion_percentage')}%"
    )


@task.command("get")
@click.argument("task_uuid")
@connection_options
def get_task(task_uuid: str, **params: Any) -> None:
    """Show a task and its steps."""
    with backend_of(params) as backend:
        document = backend.get_task(task_uuid)
    if params["as_json"]:
        _emit_json(document)
    else:
        _print_task(document)


@task.command("list")
@click.option("--namespace", default=None)
@click.option("--status", default=None, help="A task state, e.g. error or complete.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 100), default=25, show_default=True)
@connection_options
def list_tasks(
    namespace: str | None, status: str | None, page: int, per_page: int, **params: Any
) -> None:
    """List tasks, newest first."""
    with backend_of(params) as backend:
        document = backend.list_tasks(
            page=page, per_page=per_page, namespace=namespace, status=status
        )
    if params["as_json"]:
        _emit_json(document)
        return
    pagination = document["pagination"]
    _table(
        f"tasks (page {pagination['page']} of {pagination['total_pages']},"
        f" {pagination['total_count']} in all)",
        ("task uuid", "template", "status", "done %", "created at"),
        (
            (
                t["task_uuid"],
                f"{t['namespace']}/{t['name']}@{t['version']}",
                t["status"],
                t.get("completion_percentage"),
                t.get("created_at"),
            )
            for t in document["tasks"]
        ),
    )


@task.command("cancel")
@click.argument("task_uuid")
@connection_options
def cancel_task(task_uuid: str, **params: Any) -> None:
    """Cancel a task and its unfinished steps."""
    with backend_of(params) as backend:
        document = backend.cancel_task(task_uuid)
    if params["as_json"]:
        _emit_json(document)
    else:
        click.echo(f"{document['task_uuid']}: {document['status']}")


# -- step ---------------------------------------------------------------------------------------


@click.group()
def step() -> None:
    """Inspect steps and resolve failed ones by hand."""


_STEP_KEYS = (
    "step_uuid",
    "task_uuid",
    "name",
    "current_state",
    "attempts",
    "max_attempts",
    "dependencies_satisfied",
    "retry_eligible",
    "ready_for_execution",
    "created_at",
    "updated_at",
    "completed_at",
    "last_attempted_at",
    "next_retry_at",
    "last_failure_at",
    "results",
)


@step.command("list")
@click.argument("task_uuid")
@connection_options
def list_steps(task_uuid: str, **params: Any) -> None:
    """List a task's steps."""
    with backend_of(params) as backend:
        steps = backend.list_steps(task_uuid)
    if params["as_json"]:
        _emit_json(steps)
        return
    _table(
        f"steps of {task_uuid}",
        ("step", "state", "attempts", "step uuid"),
        (
            (s["name"], s["current_state"], f"{s['attempts']}/{s['max_attempts']}", s["step_uuid"])
            for s in steps
        ),
    )


@step.command("get")
@click.argument("task_uuid")
@click.argument("step_uuid")
@connection_options
def get_step(task_uuid: str, step_uuid: str, **params: Any) -> None:
    """Show one step, with its stored result or error."""
    with backend_of(params) as backend:
        document = backend.get_step(task_uuid, step_uuid)
    if params["as_json"]:
        _emit_json(document)
    else:
        _fields(f"step {document['name']}", document, _STEP_KEYS)


@step.command("audit")
@click.argument("task_uuid")
@click.argument("step_uuid")
@connection_options
def step_audit(task_uuid: str, step_uuid: str, **params: Any) -> None:
    """Show every result a worker stored for the step."""
    with backend_of(params) as backend:
        records = backend.step_audit(task_uuid, step_uuid)
    if params["as_json"]:
        _emit_json(records)
        return
    _table(
        f"audit of step {step_uuid}",
        ("recorded at", "success", "transition", "worker", "ms"),
        (
            (
                r.get("recorded_at"),
                r.get("success"),
                f"{r.get('from_state') or ''} -> {r.get('to_state')}",
                r.get("worker_uuid"),
                r.get("execution_time_ms"),
            )
            for r in records
        ),
    )


@step.command("resolve")
@click.argument("task_uuid")
@click.argument("step_uuid")
@click.argument("action_arg", metavar="[ACTION]", required=False, type=click.Choice(STEP_ACTIONS))
@click.option("--action", type=click.Choice(STEP_ACTIONS), default=None, help="What to do.")
@click.option("--reason", default="Resolved by an operator with the tasker CLI", show_default=True)
@click.option("--by", default=None, help="Who is acting (default: the login name).")
@click.option("--result", "result_json", default=None, help="complete_manually: the result JSON.")
@click.option("--metadata", "metadata_json", default=None, help="complete_manually: metadata JSON.")
@connection_options
def resolve_step(
    task_uuid: str,
    step_uuid: str,
    action_arg: str | None,
    action: str | None,
    reason: str,
    by: str | None,
    result_json: str | None,
    metadata_json: str | None,
    **params: Any,
) -> None:
    """Reset, resolve or complete a step by hand; the task then continues.

    ACTION (or --action) is reset_for_retry, resolve_manually or complete_manually.
    """
    if action_arg and action and action_arg != action:
        raise click.UsageError(f"ACTION {action_arg} and --action {action} disagree")
    chosen = action_arg or action
    if chosen is None:
        raise click.UsageError(f"name the action: one of {', '.join(STEP_ACTIONS)}")
    result = _json_arg(result_json, "--result")
    if chosen == "complete_manually" and result is None:
        raise click.UsageError("complete_manually needs --result JSON")
    with backend_of(params) as backend:
        document = backend.act_on_step(
            task_uuid,
            step_uuid,
            chosen,
            reason=reason,
            by=_who(by),
            result=result,
            metadata=_json_arg(metadata_json, "--metadata"),
        )
    if params["as_json"]:
        _emit_json(document)
    else:
        click.echo(f"{document['name']} ({document['step_uuid']}): {document['current_state']}")


# -- dlq ----------------------------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Dead letter queue: what got stuck, and what operators decided."""


_DLQ_KEYS = (
    "dlq_entry_uuid",
    "task_uuid",
    "original_state",
    "dlq_reason",
    "dlq_timestamp",
    "resolution_status",
    "resolution_timestamp",
    "resolution_notes",
    "resolved_by",
    "task_snapshot",
    "metadata",
)


@dlq.command("list")
@click.option("--status", type=click.Choice(DLQ_STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@connection_options
def list_dlq(status: str | None, limit: int, offset: int, **params: Any) -> None:
    """List DLQ entries, newest first."""
    with backend_of(params) as backend:
        entries = backend.list_dlq(status=status, limit=limit, offset=offset)
    if params["as_json"]:
        _emit_json(entries)
        return
    _table(
        "DLQ entries",
        ("entry uuid", "task uuid", "reason", "status", "since"),
        (
            (
                e["dlq_entry_uuid"],
                e["task_uuid"],
                e["dlq_reason"],
                e["resolution_status"],
                e["dlq_timestamp"],
            )
            for e in entries
        ),
    )


@dlq.command("get")
@click.argument("task_uuid")
@connection_options
def get_dlq(task_uuid: str, **params: Any) -> None:
    """Show a task's latest DLQ entry."""
    with backend_of(params) as backend:
        entry = backend.dlq_entry(task_uuid)
    if params["as_json"]:
        _emit_json(entry)
    else:
        _fields(f"DLQ entry of task {task_uuid}", entry, _DLQ_KEYS)


@dlq.command("update")
@click.argument("entry_uuid")
@click.option("--status", type=click.Choice(DLQ_STATUSES), default=None)
@click.option("--notes", default=None, help="What was found and done.")
@click.option("--by", default=None, help="Who investigated (default: the login name).")
@connection_options
def update_dlq(
    entry_uuid: str, status: str | None, notes: str | None, by: str | None, **params: Any
) -> None:
    """Record the outcome of an investigation."""
    with backend_of(params) as backend:
        answer = backend.update_dlq(entry_uuid, status=status, notes=notes, by=_who(by))
    if params["as_json"]:
        _emit_json(answer)
    else:
        click.echo(f"{answer['dlq_entry_uuid']}: {answer['message']}")


@dlq.command("stats")
@connection_options
def dlq_stats(**params: Any) -> None:
    """Count DLQ entries by reason and resolution status."""
    with backend_of(params) as backend:
        rows = backend.dlq_stats()
    if params["as_json"]:
        _emit_json(rows)
        return
    _table(
        "DLQ by reason",
        ("reason", "total", "pending", "resolved", "failed", "cancelled", "avg min"),
        (
            (
                r["dlq_reason"],
                r["total_entries"],
                r["pending"],
                r["manually_resolved"],
                r["permanent_failures"],
                r["cancelled"],
                r.get("avg_resolution_time_minutes"),
            )
            for r in rows
        ),
    )


# -- analytics ----------------------------------------------------------------------------------


@click.group()
def analytics() -> None:
    """Performance over a window, and the slowest steps and tasks."""


_PERFORMANCE_KEYS = (
    "total_tasks",
    "active_tasks",
    "completed_tasks",
    "failed_tasks",
    "completion_rate",
    "error_rate",
    "average_task_duration_seconds",
    "average_step_duration_seconds",
    "tasks_per_hour",
    "steps_per_hour",
    "system_health_score",
    "analysis_period_start",
    "calculated_at",
)


@analytics.command("performance")
@click.option(
    "--hours", type=click.IntRange(1, 24 * 366), default=24, show_default=True, help="Window."
)
@connection_options
def performance(hours: int, **params: Any) -> None:
    """Outcomes, durations, throughput and health of the tasks created in the last HOURS."""
    with backend_of(params) as backend:
        document = backend.performance(hours=hours)
    if params["as_json"]:
        _emit_json(document)
    else:
        _fields(f"performance of the last {hours} h", document, _PERFORMANCE_KEYS)


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}"


@analytics.command("bottlenecks")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option(
    "--min-executions",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Leave out steps and tasks that ran fewer times.",
)
@connection_options
def bottlenecks(limit: int, min_executions: int, **params: Any) -> None:
    """The slowest steps and tasks (all history), resource use and recommendations."""
    with backend_of(params) as backend:
        document = backend.bottlenecks(limit=limit, min_executions=min_executions)
    if params["as_json"]:
        _emit_json(document)
        return
    _table(
        "slowest steps",
        ("template", "step", "avg s", "max s", "runs", "errors", "last run"),
        (
            (
                f"{s['namespace_name']}/{s['task_name']}@{s['version']}",
                s["step_name"],
                _seconds(s["average_duration_seconds"]),
                _seconds(s["max_duration_seconds"]),
                s["execution_count"],
                s["error_count"],
                s.get("last_executed_at"),
            )
            for s in document["slow_steps"]
        ),
    )
    _table(
        "slowest tasks",
        ("template", "avg s", "max s", "runs", "errors", "avg steps", "last finished"),
        (
            (
                f"{t['namespace_name']}/{t['task_name']}@{t['version']}",
                _seconds(t["average_duration_seconds"]),
                _seconds(t["max_duration_seconds"]),
                t["execution_count"],
                t["error_count"],
                t["average_step_count"],
                t.get("last_executed_at"),
            )
            for t in document["slow_tasks"]
        ),
    )
    resources = document["resource_utilization"]
    click.echo(
        f"system health: {resources['system_health']}  database pool in use:"
        f" {float(resources['database_pool_utilization']):.0%}"
    )
    for line in document["recommendations"]:
        click.echo(f"- {line}")


# -- template -----------------------------------------------------------------------------------


@click.group()
def template() -> None:
    """Registered templates; validate checks template files."""


@template.command("list")
@click.option("--namespace", default=None)
@connection_options
def list_templates(namespace: str | None, **params: Any) -> None:
    """List registered templates."""
    with backend_of(params) as backend:
        document = backend.list_templates(namespace)
    if params["as_json"]:
        _emit_json(document)
        return
    _table(
        "templates",
        ("namespace", "name", "version", "steps", "description"),
        (
            (t["namespace"], t["name"], t["version"], t["step_count"], t.get("description"))
            for t in document["templates"]
        ),
    )


@template.command("get")
@click.argument("namespace")
@click.argument("name")
@click.argument("version")
@connection_options
def get_template(namespace: str, name: str, version: str, **params: Any) -> None:
    """Show one registered template and its steps."""
    with backend_of(params) as backend:
        document = backend.get_template(namespace, name, version)
    if params["as_json"]:
        _emit_json(document)
        return
    _table(
        f"{namespace}/{name}@{version}: {document.get('description') or ''}",
        ("step", "retryable", "max attempts"),
        ((s["name"], s["default_retryable"], s["default_max_attempts"]) for s in document["steps"]),
    )


@template.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def validate_templates(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check template files or directories (the same as tasker validate)."""
    from pathlib import Path

    from tasker.cli.main import validate

    ctx.invoke(validate, paths=tuple(Path(p) for p in paths))


# -- health -------------------------------------------------------------------------------------


@click.command()
@connection_options
def health(**params: Any) -> None:
    """The server's readiness (/health/ready), or that the database answers; exit 1 if not."""
    with backend_of(params) as backend:
        document = backend.health()
    ready = document.get("status") == "ready"
    if params["as_json"]:
        _emit_json(document)
    else:
        checks = document.get("checks") or {}
        _table(
            f"health: {document.get('status')}",
            ("check", "status", "message"),
            (
                (name, c.get("status"), c.get("message"))
                for name, c in sorted(checks.items())
                if isinstance(c, dict)
            ),
        )
    if not ready:
        sys.exit(1)
