"""``python -m benchmarks.creation``: what creating one task costs, with no workers running.

    python -m benchmarks.creation [--backend sqlite|postgres] [--tasks N] [--rounds R]
                                  [--template linear4|diamond4] [--batch B]

Creates N tasks of a benchmark template R times (each round on a fresh database, after a few
warm-up tasks) and prints, per task: wall ms, this process's CPU ms, statements and commits; on
PostgreSQL also the CPU ms of the server's processes (read from ``/proc`` when the server is
a local cluster this user can see: the throwaway one this command starts, or
``TASKER_BENCH_DATABASE_URL``'s if it runs here). With ``--batch B`` the tasks are created B
at a time with ``Tasker.submit_many`` (one transaction per call) instead of one by one.
Creation is the caller's cost of every workload, and on SQLite it runs under the same write
lock as the workers' steps.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.deployment import (
    HANDLERS_MODULE,
    NAMESPACE,
    SETTINGS,
    TEMPLATES_DIR,
    PostgresServer,
    Server,
    SqliteServer,
    cpu_s,
    proc_stat,
)
from tasker.config import Settings
from tasker.domain.model import TaskRequest
from tasker.runtime import Tasker

__all__ = ["main"]

_WARMUP = 20


def _server_cpu_s(postmaster_pid: int | None) -> float | None:
    """CPU seconds used so far by the server's processes (children of the postmaster)."""
    if postmaster_pid is None:
        return None
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = proc_stat(entry.name)
        if fields is not None and (
            int(fields[1]) == postmaster_pid or int(entry.name) == postmaster_pid
        ):
            total += cpu_s(entry.name, children=True) or 0.0
    return total


def _postmaster_pid(server: Server) -> int | None:
    """The server's postmaster, found as the parent of our own backend (local servers only)."""
    admin = getattr(server, "_admin", None)
    if admin is None:
        return None
    row = admin.execute("SELECT pg_backend_pid()").fetchone()
    fields = proc_stat(row[0])
    return None if fields is None else int(fields[1])


def _create(app: Tasker, template: str, tasks: int, batch: int) -> None:
    if batch <= 1:
        for index in range(tasks):
            app.create_task(template, namespace=NAMESPACE, context={"seed": 2, "i": index})
        return
    for first in range(0, tasks, batch):
        app.submit_many(
            TaskRequest(name=template, namespace=NAMESPACE, context={"seed": 2, "i": index})
            for index in range(first, min(first + batch, tasks))
        )


def _round(
    server: Server, template: str, tasks: int, batch: int, pid: int | None
) -> dict[str, float]:
    url = server.new_database()
    settings = Settings.load(dict(SETTINGS), environ={})
    app = Tasker(url, settings=settings, templates=[TEMPLATES_DIR], handlers=[HANDLERS_MODULE])
    try:
        for index in range(_WARMUP):
            app.create_task(template, namespace=NAMESPACE, context={"seed": 2, "warmup": index})
        stats = app.store.stats
        statements, commits = stats.statements, stats.commits
        server_before = _server_cpu_s(pid)
        cpu = time.process_time()
        wall = time.perf_counter()
        _create(app, template, tasks, batch)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        server_after = _server_cpu_s(pid)
        figures = {
            "wall_ms": 1000 * wall / tasks,
            "cpu_ms": 1000 * cpu / tasks,
            "statements": (stats.statements - statements) / tasks,
            "commits": (stats.commits - commits) / tasks,
        }
        if server_before is not None and server_after is not None:
            figures["server_cpu_ms"] = 1000 * (server_after - server_before) / tasks
        return figures
    finally:
        app.close()
        server.drop_database(url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.creation", description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--template", default="linear4")
    parser.add_argument("--batch", type=int, default=1, help="tasks per submit_many call")
    args = parser.parse_args(argv)
    server: Server
    if args.backend == "sqlite":
        server = SqliteServer()
    else:
        server = PostgresServer(os.environ.get("TASKER_BENCH_DATABASE_URL") or None)
    pid = _postmaster_pid(server)
    columns = ("wall_ms", "cpu_ms", "server_cpu_ms", "statements", "commits")
    how = "one by one" if args.batch <= 1 else f"{args.batch} per submit_many call"
    print(
        f"creating {args.tasks} {args.template} tasks per round ({how}), {args.backend}, per task:"
    )
    print("round  " + "  ".join(f"{c:>13}" for c in columns))
    try:
        for number in range(1, args.rounds + 1):
            figures = _round(server, args.template, args.tasks, args.batch, pid)
            cells = [f"{figures[c]:13.3f}" if c in figures else f"{'n/a':>13}" for c in columns]
            print(f"{number:>5}  " + "  ".join(cells), flush=True)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
