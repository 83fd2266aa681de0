"""``python -m benchmarks run``: run the workloads and print a table (or one JSON object).

    python -m benchmarks run [--backend sqlite|postgres] [--workers N] [--concurrency C]
                             [--json] [--only NAME,...] [--quick] [--save PATH]

Exit status: 0 when every workload's results checked out, 1 when one did not, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.deployment import (
    SETTINGS,
    BenchmarkError,
    Environment,
    PostgresServer,
    Server,
    SqliteServer,
)
from benchmarks.workloads import FULL, QUICK, WORKLOADS, Result, Scale, run_workload

__all__ = ["TARGETS", "Target", "main"]


@dataclass(frozen=True, slots=True)
class Target:
    """A goal from the issue: ``metric`` of ``workload`` must be ``<=`` or ``>=`` ``bound``."""

    workload: str
    metric: str
    op: str
    bound: float
    backend: str | None = None  # None: any configuration
    workers: int | None = None

    def applies(self, backend: str, workers: int) -> bool:
        return (self.backend is None or self.backend == backend) and (
            self.workers is None or self.workers == workers
        )

    def is_met(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound

    @property
    def label(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


TARGETS = (
    Target("linear4_throughput", "steps_per_s", ">=", 2000, "sqlite", 0),
    Target("linear4_latency", "p50_ms", "<=", 5, "sqlite", 0),
    Target("linear4_throughput", "steps_per_s", ">=", 1500, "postgres", 2),
    Target("linear4_latency", "p50_ms", "<=", 10, "postgres", 2),
    Target("batch_1000", "rows_per_s", ">=", 50_000),
    Target("wide_fanout", "wall_s", "<=", 2),
    Target("linear4_scaling", "ratio", "<=", 11),
)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the workloads")
    run.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    run.add_argument(
        "--workers",
        type=int,
        default=0,
        help="tasker worker processes; 0 (default) runs the workers in this process",
    )
    run.add_argument("--concurrency", type=int, default=4, help="worker threads per process")
    run.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    run.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(WORKLOADS)}"
    )
    run.add_argument(
        "--create-batch",
        type=int,
        default=FULL.create_batch,
        help="tasks per submit_many call in the throughput workloads; 1: create_task per task",
    )
    run.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness only")
    run.add_argument("--save", metavar="PATH", help="also write the JSON report to PATH")
    args = parser.parse_args(argv)
    args.only_names = [n.strip() for n in args.only.split(",") if n.strip()] or list(WORKLOADS)
    unknown = [n for n in args.only_names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    if args.workers < 0 or args.concurrency < 1:
        parser.error("--workers must be >= 0 and --concurrency >= 1")
    return args


def _server(backend: str) -> Server:
    if backend == "sqlite":
        return SqliteServer()
    return PostgresServer(os.environ.get("TASKER_BENCH_DATABASE_URL") or None)


def _targets(
    results: dict[str, Result], backend: str, workers: int, quick: bool
) -> list[dict[str, Any]]:
    evaluated = []
    for target in TARGETS:
        result = results.get(target.workload)
        if result is None or not target.applies(backend, workers):
            continue
        value = result.metrics.get(target.metric)
        met = None if quick or value is None or not result.ok else target.is_met(value)
        evaluated.append(
            {"workload": target.workload, "target": target.label, "value": value, "met": met}
        )
    return evaluated


def _figures(result: Result) -> str:
    m = result.metrics
    if "p50_ms" in m:
        return f"P50 {m['p50_ms']:.1f} ms, P95 {m['p95_ms']:.1f} ms"
    if "ratio" in m:
        return (
            f"{m['large_tasks']:.0f} tasks {m['large_wall_s']:.2f} s / "
            f"{m['small_tasks']:.0f} tasks {m['small_wall_s']:.2f} s = {m['ratio']:.1f}x"
        )
    if "rows_per_s" in m:
        return f"{m['wall_s']:.2f} s, {m['rows_per_s']:,.0f} rows/s"
    if "tasks_per_s" in m:
        return (
            f"{m['wall_s']:.2f} s, {m['tasks_per_s']:,.0f} tasks/s, {m['steps_per_s']:,.0f} steps/s"
        )
    if "wall_s" in m:
        return f"{m['wall_s']:.2f} s"
    return "-"


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(report: dict[str, Any], results: dict[str, Result]) -> str:
    header = ("workload", "figures", "stmts/step", "commits/step", "peak RSS MiB", "check")
    rows = [header]
    for name, result in results.items():
        rows.append(
            (
                name,
                _figures(result),
                _number(result.statements_per_step),
                _number(result.commits_per_step, 2),
                _number(result.peak_rss_mb, 0),
                "ok" if result.ok else result.check,
            )
        )
    widths = [max(len(row[i]) for row in rows[:]) for i in range(len(header) - 1)]
    lines = [
        f"tasker benchmarks, {report['date']}: backend {report['backend']}, "
        f"workers {report['workers']} x {report['concurrency']} threads, "
        f"tasks created {report['create_batch']} per call, "
        f"{report['machine']['cpus']} CPUs{' (QUICK sizes)' if report['quick'] else ''}",
        "",
    ]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    counted = sorted({r.counted_by for r in results.values() if r.counted_by})
    lines.append("")
    lines.append(f"SQL counted by: {', '.join(counted) or '-'}")
    for target in report["targets"]:
        met = {True: "met", False: "MISSED", None: "not judged"}[target["met"]]
        value = "n/a" if target["value"] is None else f"{target['value']:,.1f}"
        lines.append(f"target {target['workload']}: {target['target']}: {value} -> {met}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    scale: Scale = replace(QUICK if args.quick else FULL, create_batch=args.create_batch)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    server = _server(args.backend)
    env = Environment(server, args.workers, args.concurrency)
    results: dict[str, Result] = {}
    try:
        for name in args.only_names:
            print(f"benchmarks: {name} ...", file=sys.stderr, flush=True)
            results[name] = run_workload(name, env, scale)
    finally:
        env.close()
    report: dict[str, Any] = {
        "date": started_at.isoformat(timespec="seconds"),
        "backend": args.backend,
        "server": server.description,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "create_batch": args.create_batch,
        "settings": dict(SETTINGS),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "duration_s": round(time.perf_counter() - started, 1),
        "ok": all(r.ok for r in results.values()),
        "workloads": {name: r.to_dict() for name, r in results.items()},
    }
    report["targets"] = _targets(results, args.backend, args.workers, args.quick)
    text = json.dumps(report, indent=2)
    if args.save:
        Path(args.save).write_text(text + "\n", encoding="utf-8")
    print(text if args.json else _table(report, results))
    return 0 if report["ok"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except BenchmarkError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
