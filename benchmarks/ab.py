"""``python -m benchmarks.ab A B``: is checkout B's engine faster than A's, measured interleaved.

    python -m benchmarks.ab A B [--runs N] [--template linear4|diamond4] [--workers W]
                                [--batch TASKS]

This VM's speed drifts by ±30 % within minutes, so two benchmark runs one after the other
compare the machine as much as the code. Here both engines run at once, on two databases of one
PostgreSQL server, each served by W worker processes that import ``tasker`` from its
checkout's ``src/`` (``A`` and ``B`` are directories, e.g. ``git worktree add /tmp/a REV``).
The tasks alternate between them one at a time (A then B, then B then A, ...), so any drift
hits both alike, and each pair of neighbouring tasks gives a paired difference. With
``--batch N`` each run is N tasks created at once and timed to the last, in steps per second.
The caller (creation and ``Tasker.wait``) is this checkout's code for both, and so is the
schema (it migrates both databases). An A/A run of the harness showed differences of +0.3 ms
on ~14 ms tasks: treat |median(B - A)| under ~0.5 ms as noise.
PostgreSQL only: an SQLite engine runs in the caller's process, which has one ``tasker``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from benchmarks.deployment import Environment, PostgresServer, Session
from benchmarks.workloads import EXPECTED, SEEDS

__all__ = ["main"]

_WARMUP = 5


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("a", type=Path, help="checkout A (a directory with src/tasker)")
    parser.add_argument("b", type=Path, help="checkout B")
    parser.add_argument(
        "--runs", type=int, default=200, help="tasks (or --batch rounds) per side (default 200)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="throughput instead of latency: each run creates this many tasks at once (50 per"
        " submit_many call) and times them all; prints steps/s",
    )
    parser.add_argument("--template", choices=sorted(EXPECTED), default="linear4")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per side")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per process")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    for side in (args.a, args.b):
        if not (side / "src" / "tasker").is_dir():
            print(f"benchmarks.ab: {side} has no src/tasker", file=sys.stderr)
            return 2
    server = PostgresServer(os.environ.get("TASKER_BENCH_DATABASE_URL") or None)
    env = Environment(server, args.workers, args.concurrency)
    timings: dict[str, list[float]] = {"A": [], "B": []}
    try:
        with ExitStack() as stack:
            sessions = {
                "A": stack.enter_context(env.session(worker_code=args.a)),
                "B": stack.enter_context(env.session(worker_code=args.b)),
            }
            done = {"A": 0, "B": 0}
            warmup = 1 if args.batch else _WARMUP
            for index in range(warmup + args.runs):
                order = ("A", "B") if index % 2 == 0 else ("B", "A")
                for side in order:
                    session = sessions[side]
                    started = time.perf_counter()
                    tasks = _run_once(session, args.template, index, args.batch)
                    done[side] += len(tasks)
                    if args.batch:
                        session.wait_settled(done[side], 600.0)
                    elapsed = time.perf_counter() - started
                    if index >= warmup:
                        timings[side].append(
                            4 * len(tasks) / elapsed if args.batch else elapsed * 1000.0
                        )
                    wrong = _check(session, args.template, tasks)
                    if wrong:
                        print(f"benchmarks.ab: {side}: {wrong}")
                        return 1
    finally:
        env.close()
    _report(args, timings)
    return 0


def _run_once(session: Session, template: str, index: int, batch: int) -> list[tuple[str, int]]:
    """One latency task (created, waited for), or ``batch`` tasks created 50 per call."""
    if not batch:
        seed = SEEDS[index % len(SEEDS)]
        task = session.create(template, {"seed": seed, "i": index})
        session.wait_task(task, 60.0)
        return [(task, seed)]
    seeds = [SEEDS[i % len(SEEDS)] for i in range(batch)]
    created: list[str] = []
    for first in range(0, batch, 50):
        chunk = range(first, min(first + 50, batch))
        contexts = [{"seed": seeds[i], "i": index, "n": i} for i in chunk]
        created.extend(session.create_many(template, contexts))
    return list(zip(created, seeds, strict=True))


def _check(session: Session, template: str, tasks: list[tuple[str, int]]) -> str | None:
    for task, seed in tasks[:5]:  # a sample: the harness's own checks cover every task
        view = session.view(task)
        got = {n: (s.result or {}).get("value") for n, s in view.steps.items()}
        if view.state != "complete" or got != EXPECTED[template](seed):
            return f"task {task} is wrong: {view.state} {got}"
    return None


def _report(args: argparse.Namespace, timings: dict[str, list[float]]) -> None:
    unit = "steps/s" if args.batch else "ms"
    what = f"{args.batch} tasks at once" if args.batch else "one task at a time"
    print(f"{args.template}, {what}, {args.runs} runs per side, {args.workers} worker processes")
    label = "median" if args.batch else "P50"
    print(f"A {args.a}: {label} {statistics.median(timings['A']):,.2f} {unit}")
    print(f"B {args.b}: {label} {statistics.median(timings['B']):,.2f} {unit}")
    differences = [b - a for a, b in zip(timings["A"], timings["B"], strict=True)]
    print(
        f"B - A, paired: median {statistics.median(differences):+,.2f} {unit},"
        f" mean {statistics.mean(differences):+,.2f} {unit}"
    )


if __name__ == "__main__":
    sys.exit(main())
