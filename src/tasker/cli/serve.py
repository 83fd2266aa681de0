"""``tasker serve``: the REST API under uvicorn, with the engine's workers in the same process.

``--no-workers`` serves the API only (workers run elsewhere, on the same database). SIGTERM or
SIGINT stops uvicorn (it finishes the requests in flight), then the workers get their grace
period, as ``tasker worker`` gives them (reliability.md R8.5).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import click

from tasker.api.settings import ApiSettings
from tasker.config import Settings
from tasker.runtime import Tasker

__all__ = ["serve"]

log = logging.getLogger("tasker.serve")


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _run_uvicorn(asgi: Any, config: dict[str, Any]) -> None:
    """Run uvicorn until SIGTERM/SIGINT, without its re-raising of the signal afterwards.

    uvicorn raises the signal again once it has stopped, which ends the process before the
    workers get their grace period; we stop the workers after this returns, then exit 0.
    uvicorn is imported here so that the rest of the CLI works without the ``server`` extra.
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    Server(uvicorn.Config(asgi, **config)).run()


def _uvicorn_level() -> str:
    """The root logger's level as uvicorn names it (the CLI's ``--log-level``)."""
    name = str(logging.getLevelName(logging.getLogger().level)).lower()
    return name if name in ("critical", "error", "warning", "info", "debug") else "warning"


@click.command()
@click.option(
    "--host",
    envvar="TASKER_HOST",
    show_envvar=True,
    default=None,
    help="Address to listen on (default 127.0.0.1; auth turns on elsewhere).",
)
@click.option(
    "--port",
    envvar="TASKER_PORT",
    show_envvar=True,
    type=int,
    default=None,
    help="Port to listen on (default 8080).",
)
@click.option(
    "--database-url",
    envvar="TASKER_DATABASE_URL",
    show_envvar=True,
    default=None,
    help="sqlite:///path/to/file.db (default sqlite:///./tasker.db) or postgresql://…",
)
@click.option(
    "--templates",
    envvar="TASKER_TEMPLATE_PATH",
    show_envvar=True,
    default=None,
    help="Template files or directories (comma-separated) to register.",
)
@click.option(
    "--handlers",
    envvar="TASKER_HANDLERS",
    show_envvar=True,
    default=None,
    help="Comma-separated modules whose step handlers to register.",
)
@click.option("--no-workers", is_flag=True, help="Serve the API only; run no step handlers.")
@click.option(
    "--auth",
    "auth_enabled",
    envvar="TASKER_AUTH_ENABLED",
    show_envvar=True,
    type=click.Choice(["auto", "true", "false"]),
    default=None,
    help="auto (default): off on loopback, on elsewhere.",
)
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    templates: str | None,
    handlers: str | None,
    no_workers: bool,
    auth_enabled: str | None,
) -> None:
    """Serve the REST API (and run workers unless --no-workers) until SIGTERM/SIGINT."""
    from tasker.api import create_app

    settings = Settings.load(
        {
            "database_url": database_url,
            "template_path": _split(templates),
            "handlers": _split(handlers),
        }
    )
    api_settings = ApiSettings.load({"host": host, "port": port, "auth_enabled": auth_enabled})
    app = Tasker(settings=settings)
    try:
        asgi = create_app(app, api_settings)  # refuses to start when auth has no credential
        if not no_workers:
            app.start()
        workers = "none" if no_workers else f"{settings.concurrency} threads"
        auth = "on" if api_settings.auth_active else "off"
        click.echo(
            f"tasker: serving http://{api_settings.host}:{api_settings.port}"
            f" (auth {auth}, workers {workers}, {app.store.backend})",
            err=True,
        )
        config: dict[str, Any] = {
            "host": api_settings.host,
            "port": api_settings.port,
            "log_level": _uvicorn_level(),
            "access_log": False,
            "timeout_graceful_shutdown": 10,
        }
        _run_uvicorn(asgi, config)
    finally:
        app.close()
