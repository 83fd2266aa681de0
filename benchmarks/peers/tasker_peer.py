"""tasker's own row: the existing harness (``python -m benchmarks run``) on the same workloads.

It runs as a subprocess of this one (already inside the peer's ``flock``), with the harness's
own settings: 4 worker threads per process, jitter off, a fresh database per workload.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version as package_version
from typing import Any

from benchmarks.peers.protocol import PeerResult, Scale
from benchmarks.peers.services import ROOT

__all__ = ["run_tasker"]

WORKLOADS = ("linear4_latency", "linear4_throughput")


def _revision() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else "?"


def run_tasker(name: str, backend: str, workers: int, scale: Scale) -> PeerResult:
    """One harness run with both linear4 workloads; its figures become the row."""
    result = PeerResult(name)
    result.version = f"{package_version('tasker')} ({_revision()})"
    where = "workers in the caller's process" if workers == 0 else f"{workers} worker processes"
    server = "SQLite file" if backend == "sqlite" else "PostgreSQL (pg-cluster.sh, fsync off)"
    result.configuration = f"{server}; {where} x 4 threads; python -m benchmarks run"
    command = [
        sys.executable, "-m", "benchmarks", "run", "--json",
        "--only", ",".join(WORKLOADS),
        "--backend", backend,
        "--workers", str(workers),
    ]  # fmt: skip
    if scale.throughput_workflows < Scale().throughput_workflows:
        command.append("--quick")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        result.check = f"FAILED: harness exit {done.returncode}: {done.stderr[-500:]}"
        return result
    latency = report["workloads"]["linear4_latency"]
    throughput = report["workloads"]["linear4_throughput"]
    result.metrics = {
        "p50_ms": latency["p50_ms"],
        "p95_ms": latency["p95_ms"],
        "max_ms": latency["max_ms"],
        "runs": latency["runs"],
        "wall_s": throughput["wall_s"],
        "workflows_per_s": throughput["tasks_per_s"],
        "steps_per_s": throughput["steps_per_s"],
        "workflows": throughput["wall_s"] * throughput["tasks_per_s"],
    }
    result.ok = bool(report["ok"])
    result.check = "; ".join(f"{name}: {report['workloads'][name]['check']}" for name in WORKLOADS)
    return result
