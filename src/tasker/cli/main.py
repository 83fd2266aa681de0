"""The ``tasker`` command: run, validate, demo, worker and task operations.

Every ``TaskerError`` becomes one line on stderr and exit code 1 (usage errors exit 2);
``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tasker.config import Settings
from tasker.domain.model import TaskRequest
from tasker.errors import InvalidContext, TaskerError, TemplateError
from tasker.orchestration.creation import validate_request
from tasker.runtime import Tasker, TaskView
from tasker.templates import load_templates

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def database_option(func: F) -> F:
    return click.option(
        "--database-url",
        envvar="TASKER_DATABASE_URL",
        show_envvar=True,
        default=None,
        help="sqlite:///path/to/file.db (default sqlite:///./tasker.db) or postgresql://…",
    )(func)


def handlers_option(func: F) -> F:
    return click.option(
        "--handlers",
        envvar="TASKER_HANDLERS",
        show_envvar=True,
        default=None,
        help="Comma-separated modules whose step handlers to register.",
    )(func)


def parse_context(text: str | None) -> Any:
    """The ``--context`` value as JSON (an object is checked later, with the template)."""
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidContext(f"--context is not valid JSON: {exc}") from None


def split_modules(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@click.group()
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--log-level", envvar="TASKER_LOG_LEVEL", show_envvar=True, default="warning")
@click.pass_context
def cli(ctx: click.Context, debug: bool, log_level: str) -> None:
    """tasker: workflow orchestration, embedded on SQLite or scaled out on PostgreSQL."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so --handlers finds modules next to the templates


@cli.command()
@click.argument("template", type=click.Path(exists=True, path_type=Path))
@handlers_option
@click.option("--context", "context_json", default=None, help="The task input, a JSON object.")
@database_option
@click.option("--name", default=None, help="Which template, when TEMPLATE holds several.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option(
    "--timeout", type=float, default=None, help="Give up waiting after this many seconds."
)
def run(
    template: Path,
    handlers: str | None,
    context_json: str | None,
    database_url: str | None,
    name: str | None,
    as_json: bool,
    timeout: float | None,
) -> None:
    """Run one task of TEMPLATE in this process; exit 0 when it completes, 1 otherwise."""
    context = parse_context(context_json)
    templates = load_templates([template])
    if name is not None:
        templates = [t for t in templates if t.name == name]
    if len(templates) != 1:
        names = ", ".join(t.name for t in load_templates([template]))
        raise click.UsageError(f"{template} holds templates {names}: choose one with --name")
    chosen = templates[0]
    # A context the template refuses must not leave the template registered (R7.3).
    request = TaskRequest(name=chosen.name, context={} if context is None else context)
    validate_request(request, chosen)
    settings = Settings.load({"database_url": database_url})
    with Tasker(settings=settings, handlers=split_modules(handlers)) as app:
        app.register_template(chosen)
        view = app.run(
            chosen.name,
            namespace=chosen.namespace_name,
            version=chosen.version,
            context=context,
            timeout_s=timeout,
        )
    if as_json:
        click.echo(json.dumps(view.to_dict(), default=str))
    else:
        print_task(view)
    sys.exit(0 if view.is_complete else 1)


def print_task(view: TaskView) -> None:
    """A human-readable table of the task's steps."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{view.namespace}/{view.name}@{view.version}  {view.task_uuid}")
    for column in ("step", "state", "attempts", "result / error"):
        table.add_column(column)
    for step in view.steps.values():
        detail = step.result if step.error is None else step.error.get("message")
        table.add_row(step.name, step.state, str(step.attempts), json.dumps(detail, default=str))
    console = Console()
    console.print(table)
    console.print(f"task state: [bold]{view.state}[/bold]")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check template files or directories; print one line per problem."""
    try:
        templates = load_templates(paths)
    except TemplateError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(1)
    for template in templates:
        click.echo(f"ok: {template.label} ({len(template.steps)} steps)")


@cli.command()
@database_option
@click.option("--orders", type=int, default=1, help="How many orders to run side by side.")
def demo(database_url: str | None, orders: int) -> None:
    """Run the bundled order-fulfilment workflow with a live view of its steps."""
    from tasker.demo import run_demo

    settings = Settings.load({"database_url": database_url})
    ok = run_demo(settings, orders=orders)
    sys.exit(0 if ok else 1)


def _register_commands() -> None:
    from tasker.cli.worker import worker

    cli.add_command(worker)


_register_commands()


def _register_operator_commands() -> None:
    from tasker.cli.operator import analytics, dlq, health, step, task, template
    from tasker.cli.serve import serve

    for command in (serve, task, step, dlq, analytics, template, health):
        cli.add_command(command)


_register_operator_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="tasker", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TaskerError as exc:
        if debug:
            raise
        message = str(exc).splitlines() or [type(exc).__name__]
        for line in message:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
