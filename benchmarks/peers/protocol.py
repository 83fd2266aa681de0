"""The protocol every peer runs, copied from ``benchmarks/workloads.py`` so the rows compare.

``linear4_latency``: one workflow at a time, 4 chained steps that each square their parent (seeds
2, 3, 4 in turn), 3 warm-up runs, then 20 sequential runs timed from the submit call to the final
value being in the caller's hands. ``linear4_throughput``: 200 such workflows submitted at once,
timed until the caller has every final value. Every final value is compared with the expected
one: a wrong or lost result fails the row instead of reporting a fast time.

Only the standard library is imported here, so the project venv (without the peers' libraries)
can import and test this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "SEEDS",
    "CheckFailed",
    "Peer",
    "PeerResult",
    "Scale",
    "expected_final",
    "percentile",
    "run_peer",
]

SEEDS = (2, 3, 4)
STEPS = 4


@dataclass(frozen=True, slots=True)
class Scale:
    """Sizes: the defaults are the issue's protocol; ``quick`` only shows the harness works."""

    latency_warmup: int = 3
    latency_runs: int = 20
    throughput_workflows: int = 200
    timeout_s: float = 300.0


QUICK = Scale(latency_warmup=1, latency_runs=3, throughput_workflows=10, timeout_s=60.0)


class CheckFailed(Exception):
    """A workflow's final value is missing or not the expected one."""


def expected_final(seed: int) -> int:
    """Four squarings: seed 2 gives 4, 16, 256, 65536."""
    value = seed
    for _ in range(STEPS):
        value *= value
    return value


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile, as the tasker harness computes it (P95 of 20 is the 19th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Peer(Protocol):
    """One engine set up for the protocol. ``start`` may launch services and worker processes;
    ``close`` must stop everything ``start`` launched, even after a failure."""

    name: str

    def version(self) -> str: ...

    def configuration(self) -> str: ...

    def start(self) -> None: ...

    def run_one(self, seed: int, timeout_s: float) -> int:
        """Submit one linear4 workflow and return its final value once the caller sees it."""
        ...

    def run_many(self, seeds: Sequence[int], timeout_s: float) -> list[int]:
        """Submit every workflow at once, wait for all, return the final values in order."""
        ...

    def close(self) -> None: ...


@dataclass(slots=True)
class PeerResult:
    """One peer's row: both workloads' figures and whether every value checked out."""

    peer: str
    version: str = "?"
    configuration: str = ""
    ok: bool = False
    check: str = "not run"
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "version": self.version,
            "configuration": self.configuration,
            "ok": self.ok,
            "check": self.check,
            **{key: round(value, 4) for key, value in self.metrics.items()},
            "notes": self.notes,
        }


def _check(seed: int, got: object, what: str) -> None:
    expected = expected_final(seed)
    if got != expected:
        raise CheckFailed(f"{what}: seed {seed} gave {got!r}, expected {expected}")


def measure_latency(peer: Peer, scale: Scale) -> dict[str, float]:
    """Warm up, then time ``latency_runs`` workflows one after the other."""
    for index in range(scale.latency_warmup):
        seed = SEEDS[index % len(SEEDS)]
        _check(seed, peer.run_one(seed, scale.timeout_s), f"warm-up {index}")
    timings: list[float] = []
    for index in range(scale.latency_runs):
        seed = SEEDS[index % len(SEEDS)]
        started = time.perf_counter()
        value = peer.run_one(seed, scale.timeout_s)
        timings.append((time.perf_counter() - started) * 1000.0)
        _check(seed, value, f"latency run {index}")
    return {
        "p50_ms": percentile(timings, 0.50),
        "p95_ms": percentile(timings, 0.95),
        "max_ms": max(timings),
        "runs": len(timings),
    }


def measure_throughput(peer: Peer, scale: Scale) -> dict[str, float]:
    """Submit ``throughput_workflows`` at once and time until every final value is back."""
    count = scale.throughput_workflows
    seeds = [SEEDS[index % len(SEEDS)] for index in range(count)]
    started = time.perf_counter()
    values = peer.run_many(seeds, scale.timeout_s)
    wall = time.perf_counter() - started
    if len(values) != count:
        raise CheckFailed(f"throughput: {len(values)} results for {count} workflows")
    for index, (seed, value) in enumerate(zip(seeds, values, strict=True)):
        _check(seed, value, f"throughput workflow {index}")
    return {
        "wall_s": wall,
        "workflows_per_s": count / wall,
        "steps_per_s": STEPS * count / wall,
        "workflows": count,
    }


def run_peer(make: Callable[[], Peer], scale: Scale) -> PeerResult:
    """Start the peer, run both workloads, always close it; failures go into the result."""
    peer = make()
    result = PeerResult(peer.name)
    try:
        result.version = peer.version()
        peer.start()
        result.configuration = peer.configuration()  # after start: it may name server versions
        result.metrics.update(measure_latency(peer, scale))
        result.metrics.update(measure_throughput(peer, scale))
    except Exception as exc:  # any peer failure becomes the row's check, never a crash
        result.check = f"FAILED: {type(exc).__name__}: {exc}"
    else:
        result.ok = True
        result.check = (
            f"{scale.latency_warmup + scale.latency_runs + scale.throughput_workflows} "
            "final values as expected"
        )
    finally:
        try:
            peer.close()
        except Exception as exc:  # a failed shutdown is reported, not raised
            result.notes.append(f"close failed: {type(exc).__name__}: {exc}")
    return result
