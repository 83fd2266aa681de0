"""The workloads: what each one creates, what it times, and how its results are checked.

Each workload opens its own session (a fresh database with workers running), creates its
tasks, times them from the first ``create_task`` call to the moment the caller sees them
settled, then reads every task back and checks the handlers' results against values computed
here. A run whose results are wrong reports ``ok: false``, never just a time.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.deployment import BenchmarkError, Environment, Measurement, Session
from benchmarks.handlers import row_value
from tasker.domain.template import TaskTemplate
from tasker.templates import load_template_text

__all__ = ["FULL", "QUICK", "WORKLOADS", "Result", "Scale", "run_workload"]


@dataclass(frozen=True, slots=True)
class Scale:
    """How big each workload is; ``FULL`` is the issue's protocol, ``QUICK`` a smoke run."""

    latency_warmup: int = 3
    latency_runs: int = 20
    throughput_tasks: int = 200
    scaling_tasks: int = 2000
    batch_rows: int = 100_000
    batch_workers: int = 200
    fanout_width: int = 1000
    timeout_s: float = 600.0
    # Tasks per Tasker.submit_many call in the throughput workloads; 1: create_task per task.
    create_batch: int = 50


FULL = Scale()
QUICK = Scale(
    latency_warmup=1,
    latency_runs=3,
    throughput_tasks=10,
    scaling_tasks=100,
    batch_rows=20,
    batch_workers=4,
    fanout_width=20,
    timeout_s=60.0,
)


@dataclass(slots=True)
class Result:
    """One workload's figures, the cost counters, and whether its results checked out."""

    name: str
    ok: bool = False
    check: str = "not run"
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    statements_per_step: float | None = None
    commits_per_step: float | None = None
    counted_by: str = ""
    peak_rss_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "check": self.check,
            **{key: round(value, 4) for key, value in self.metrics.items()},
            "steps": self.steps,
            "statements_per_step": _rounded(self.statements_per_step),
            "commits_per_step": _rounded(self.commits_per_step),
            "counted_by": self.counted_by,
            "peak_rss_mb": _rounded(self.peak_rss_mb),
        }

    def record(self, measurement: Measurement, steps: int) -> None:
        counters = measurement.counters
        self.steps = steps
        self.counted_by = counters.source
        if counters.statements is not None:
            self.statements_per_step = counters.statements / steps
        if counters.commits is not None:
            self.commits_per_step = counters.commits / steps
        if measurement.peak_rss_kb is not None:
            self.peak_rss_mb = measurement.peak_rss_kb / 1024


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class CheckFailed(Exception):
    """A task's state or a handler's result is not what the workload expects."""


# -- expected values ----------------------------------------------------------------------

SEEDS = (2, 3, 4)


def expected_linear4(seed: int) -> dict[str, int]:
    """Each step squares its parent: seed 2 gives 4, 16, 256, 65536."""
    values: dict[str, int] = {}
    value = seed
    for name in ("s1", "s2", "s3", "s4"):
        value *= value
        values[name] = value
    return values


def expected_diamond4(seed: int) -> dict[str, int]:
    """start = seed², each branch = start², end = (left · right)²."""
    start = seed * seed
    branch = start * start
    return {"start": start, "left": branch, "right": branch, "end": (branch * branch) ** 2}


EXPECTED: Mapping[str, Callable[[int], dict[str, int]]] = {
    "linear4": expected_linear4,
    "diamond4": expected_diamond4,
}


def _check_values(session: Session, task_uuid: str, expected: Mapping[str, int]) -> None:
    view = session.view(task_uuid)
    if view.state != "complete":
        errors = {n: s.error for n, s in view.steps.items() if s.error}
        raise CheckFailed(f"task {task_uuid} ended {view.state}: {errors}")
    got = {name: (step.result or {}).get("value") for name, step in view.steps.items()}
    if got != dict(expected):
        raise CheckFailed(f"task {task_uuid}: step values {got}, expected {dict(expected)}")


# -- the workloads ------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (P95 of 20 runs is the 19th fastest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _latency(template: str) -> Callable[[Environment, Scale, Result], None]:
    def run(env: Environment, scale: Scale, result: Result) -> None:
        run_id = uuid.uuid4().hex
        with env.session() as session:
            for index in range(scale.latency_warmup):
                seed = SEEDS[index % len(SEEDS)]
                task = session.create(template, {"seed": seed, "run": run_id, "warmup": index})
                session.wait_task(task, scale.timeout_s)
                _check_values(session, task, EXPECTED[template](seed))
            timings: list[float] = []
            tasks: list[tuple[str, int]] = []
            with session.measure() as measured:
                for index in range(scale.latency_runs):
                    seed = SEEDS[index % len(SEEDS)]
                    started = time.perf_counter()
                    task = session.create(template, {"seed": seed, "run": run_id, "i": index})
                    session.wait_task(task, scale.timeout_s)
                    timings.append((time.perf_counter() - started) * 1000.0)
                    tasks.append((task, seed))
            result.record(measured[0], 4 * len(tasks))
            result.metrics = {
                "p50_ms": _percentile(timings, 0.50),
                "p95_ms": _percentile(timings, 0.95),
                "max_ms": max(timings),
                "runs": len(timings),
            }
            for task, seed in tasks:
                _check_values(session, task, EXPECTED[template](seed))
            result.check = f"{len(tasks)} tasks complete, every step's value as expected"

    return run


def _many(
    env: Environment, template: str, count: int, scale: Scale, result: Result | None
) -> float:
    """Create ``count`` tasks at once, wait for all, check them; returns the wall time."""
    run_id = uuid.uuid4().hex
    with env.session() as session:
        with session.measure() as measured:
            started = time.perf_counter()
            tasks: list[tuple[str, int]] = []
            # "Created at once": Tasker.submit_many calls of create_batch tasks (one transaction
            # each), so the workers start on the first ones while the caller writes the rest.
            chunk = max(scale.create_batch, 1)
            for first in range(0, count, chunk):
                indexes = range(first, min(first + chunk, count))
                seeds = [SEEDS[index % len(SEEDS)] for index in indexes]
                contexts = [
                    {"seed": seed, "run": run_id, "i": index}
                    for index, seed in zip(indexes, seeds, strict=True)
                ]
                if chunk == 1:
                    created = [session.create(template, contexts[0])]
                else:
                    created = session.create_many(template, contexts)
                tasks.extend(zip(created, seeds, strict=True))
            session.wait_settled(count, scale.timeout_s)
            wall = time.perf_counter() - started
        if result is not None:
            result.record(measured[0], 4 * count)
        for task, seed in tasks:
            _check_values(session, task, EXPECTED[template](seed))
    return wall


def _throughput(template: str) -> Callable[[Environment, Scale, Result], None]:
    def run(env: Environment, scale: Scale, result: Result) -> None:
        count = scale.throughput_tasks
        wall = _many(env, template, count, scale, result)
        result.metrics = {
            "wall_s": wall,
            "tasks_per_s": count / wall,
            "steps_per_s": 4 * count / wall,
        }
        result.check = f"{count} tasks complete, every step's value as expected"

    return run


def linear4_scaling(env: Environment, scale: Scale, result: Result) -> None:
    """The same linear tasks at two volumes; the wall-time ratio shows how cost grows."""
    small, large = scale.throughput_tasks, scale.scaling_tasks
    small_wall = _many(env, "linear4", small, scale, None)
    large_wall = _many(env, "linear4", large, scale, result)
    result.metrics = {
        "small_tasks": small,
        "large_tasks": large,
        "small_wall_s": small_wall,
        "large_wall_s": large_wall,
        "ratio": large_wall / small_wall,
        "large_steps_per_s": 4 * large / large_wall,
    }
    result.check = f"{small} + {large} tasks complete, every step's value as expected"


def batch_1000(env: Environment, scale: Scale, result: Result) -> None:
    """An analyzer splits the rows into batch workers; the convergence step sums them."""
    rows, workers = scale.batch_rows, scale.batch_workers
    context = {"rows": rows, "batches": workers, "run": uuid.uuid4().hex}
    with env.session() as session:
        with session.measure() as measured:
            started = time.perf_counter()
            task = session.create("batch_rows", context)
            session.wait_task(task, scale.timeout_s)
            wall = time.perf_counter() - started
        result.record(measured[0], workers + 2)
        view = session.view(task)
        total = view.steps["total_rows"].result if "total_rows" in view.steps else None
        expected = {
            "rows": rows,
            "value": sum(row_value(i) for i in range(rows)),
            "worker_count": workers,
            "scenario": "with_batches",
        }
        if view.state != "complete" or total != expected:
            raise CheckFailed(f"batch task {task} ended {view.state} with {total}, not {expected}")
        if len(view.steps) != workers + 2:
            raise CheckFailed(f"batch task {task} has {len(view.steps)} steps, not {workers + 2}")
    result.metrics = {
        "wall_s": wall,
        "rows_per_s": rows / wall,
        "steps_per_s": (workers + 2) / wall,
    }
    result.check = f"{workers} workers summed {rows} rows to the expected total"


def fanout_template(width: int) -> TaskTemplate:
    """``width`` independent leaf steps and one join that depends on all of them."""
    lines = [f"name: wide_fanout_{width}", "namespace_name: bench", 'version: "1.0.0"', "steps:"]
    leaves = [f"leaf_{index:04d}" for index in range(width)]
    for index, leaf in enumerate(leaves):
        lines.append(f"  - name: {leaf}")
        lines.append(f"    handler: {{callable: bench.leaf, initialization: {{index: {index}}}}}")
    lines.append("  - name: join")
    lines.append(f"    dependencies: [{', '.join(leaves)}]")
    lines.append("    handler: {callable: bench.sum_leaves}")
    return load_template_text("\n".join(lines) + "\n", source=f"wide_fanout_{width}")


def wide_fanout(env: Environment, scale: Scale, result: Result) -> None:
    """One task: ``fanout_width`` parallel steps, then one join."""
    width = scale.fanout_width
    template = fanout_template(width)
    with env.session([template]) as session:
        with session.measure() as measured:
            started = time.perf_counter()
            task = session.create(template.name, {"run": uuid.uuid4().hex})
            session.wait_task(task, scale.timeout_s)
            wall = time.perf_counter() - started
        result.record(measured[0], width + 1)
        view = session.view(task)
        joined = view.steps["join"].result if "join" in view.steps else None
        expected = {"count": width, "value": sum(i * i for i in range(width))}
        if view.state != "complete" or joined != expected:
            raise CheckFailed(f"fan-out task {task} ended {view.state} with {joined}")
    result.metrics = {"wall_s": wall, "steps_per_s": (width + 1) / wall}
    result.check = f"join saw all {width} leaf results and their expected sum"


WORKLOADS: Mapping[str, Callable[[Environment, Scale, Result], None]] = {
    "linear4_latency": _latency("linear4"),
    "diamond4_latency": _latency("diamond4"),
    "linear4_throughput": _throughput("linear4"),
    "diamond4_throughput": _throughput("diamond4"),
    "batch_1000": batch_1000,
    "wide_fanout": wide_fanout,
    "linear4_scaling": linear4_scaling,
}


def run_workload(name: str, env: Environment, scale: Scale) -> Result:
    """Run one workload; a failed check or a timeout is reported in the result, not raised."""
    result = Result(name)
    try:
        WORKLOADS[name](env, scale, result)
    except (CheckFailed, BenchmarkError) as exc:
        result.ok = False
        result.check = f"FAILED: {exc}"
    else:
        result.ok = True
    return result
