"""``python -m benchmarks.ab A B``: is checkout B's engine faster than A's, measured interleaved.

    python -m benchmarks.ab A B [--runs N] [--template linear4|diamond4] [--workers W]

This VM's speed drifts by ±30 % within minutes, so two benchmark runs one after the other
compare the machine as much as the code. Here both engines run at once, on two databases of one
PostgreSQL server, each served by W worker processes that import ``tasker`` from its
checkout's ``src/`` (``A`` and ``B`` are directories, e.g. ``git worktree add /tmp/a REV``).
The tasks alternate between them one at a time (A then B, then B then A, ...), so any drift
hits both alike, and each pair of neighbouring tasks gives a paired difference. The caller
(creation and ``Tasker.wait``) is this checkout's code for both, and so is the schema (it
migrates both databases). An A/A run of the harness
showed differences of +0.3 ms on ~14 ms tasks: treat |median(B - A)| under ~0.5 ms as noise.
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

from benchmarks.deployment import Environment, PostgresServer
from benchmarks.workloads import EXPECTED, SEEDS

__all__ = ["main"]

_WARMUP = 5


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("a", type=Path, help="checkout A (a directory with src/tasker)")
    parser.add_argument("b", type=Path, help="checkout B")
    parser.add_argument("--runs", type=int, default=200, help="tasks per side (default 200)")
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
            for index in range(_WARMUP + args.runs):
                order = ("A", "B") if index % 2 == 0 else ("B", "A")
                seed = SEEDS[index % len(SEEDS)]
                for side in order:
                    session = sessions[side]
                    started = time.perf_counter()
                    task = session.create(args.template, {"seed": seed, "i": index})
                    session.wait_task(task, 60.0)
                    if index >= _WARMUP:
                        timings[side].append((time.perf_counter() - started) * 1000.0)
                    view = session.view(task)
                    got = {n: (s.result or {}).get("value") for n, s in view.steps.items()}
                    if view.state != "complete" or got != EXPECTED[args.template](seed):
                        print(f"benchmarks.ab: {side}: task {task} is wrong: {got}")
                        return 1
    finally:
        env.close()
    differences = [b - a for a, b in zip(timings["A"], timings["B"], strict=True)]
    print(f"{args.template}, {args.runs} tasks per side, {args.workers} worker processes each")
    print(f"A {args.a}: P50 {statistics.median(timings['A']):.2f} ms")
    print(f"B {args.b}: P50 {statistics.median(timings['B']):.2f} ms")
    print(
        f"B - A, paired: median {statistics.median(differences):+.2f} ms,"
        f" mean {statistics.mean(differences):+.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
