"""``tasker worker``: a long-running process that claims and runs steps until told to stop.

SIGTERM or SIGINT: stop claiming, give running handlers the grace period, release what is
still running so another worker takes it at once, exit 0. A second signal exits immediately
(leases then expire normally). reliability.md R8.5.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

import click

from tasker.config import Settings
from tasker.runtime import Tasker

__all__ = ["worker"]

log = logging.getLogger("tasker.worker")


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


@click.command()
@click.option("--database-url", envvar="TASKER_DATABASE_URL", show_envvar=True, default=None)
@click.option(
    "--namespaces",
    envvar="TASKER_NAMESPACES",
    show_envvar=True,
    default=None,
    help="Comma-separated namespaces to serve (default: all).",
)
@click.option(
    "--concurrency",
    envvar="TASKER_CONCURRENCY",
    show_envvar=True,
    type=int,
    default=None,
    help="Worker threads (default 4).",
)
@click.option(
    "--handlers",
    envvar="TASKER_HANDLERS",
    show_envvar=True,
    default=None,
    help="Comma-separated modules whose handlers to register.",
)
@click.option(
    "--templates",
    envvar="TASKER_TEMPLATE_PATH",
    show_envvar=True,
    default=None,
    help="Template files or directories (comma-separated) to register.",
)
@click.option("--worker-id", envvar="TASKER_WORKER_ID", show_envvar=True, default=None)
@click.option(
    "--shutdown-grace",
    envvar="TASKER_SHUTDOWN_GRACE_S",
    show_envvar=True,
    type=float,
    default=None,
    help="Seconds running handlers get at shutdown.",
)
def worker(
    database_url: str | None,
    namespaces: str | None,
    concurrency: int | None,
    handlers: str | None,
    templates: str | None,
    worker_id: str | None,
    shutdown_grace: float | None,
) -> None:
    """Run worker threads (and orchestration upkeep) until SIGTERM/SIGINT."""
    settings = Settings.load(
        {
            "database_url": database_url,
            "namespaces": _split(namespaces),
            "concurrency": concurrency,
            "handlers": _split(handlers),
            "template_path": _split(templates),
            "worker_id": worker_id,
            "shutdown_grace_s": shutdown_grace,
        }
    )
    app = Tasker(settings=settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now; leases will expire")
            sys.stdout.flush()
            import os

            os._exit(1)
        log.info("signal %s: finishing running steps, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.start()
    click.echo(
        f"tasker worker {app.worker_id} serving "
        f"{','.join(settings.namespaces) or 'all namespaces'} on {app.store.backend} "
        f"with {settings.concurrency} threads",
        err=True,
    )
    while not stop.wait(1.0):
        pass
    app.close()
    click.echo("tasker worker stopped", err=True)
