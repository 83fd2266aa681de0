"""The peer harness's protocol (``benchmarks/peers``) without any peer engine installed.

A fake in-memory peer goes through ``run_peer``: the figures come out, a wrong or lost final
value fails the row instead of reporting a time, and a crash inside a peer still closes it.
Importing the command line must not import a peer's library (CI's venv has none of them).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from benchmarks.peers.protocol import QUICK, PeerResult, expected_final, percentile, run_peer


class FakePeer:
    """Squares in process; ``corrupt`` makes one throughput result wrong, ``crash`` raises."""

    name = "fake"

    def __init__(self, corrupt: bool = False, crash: bool = False) -> None:
        self.corrupt, self.crash = corrupt, crash
        self.closed = False

    def version(self) -> str:
        return "1.0"

    def configuration(self) -> str:
        return "in memory"

    def start(self) -> None:
        if self.crash:
            raise RuntimeError("worker did not start")

    def run_one(self, seed: int, timeout_s: float) -> int:
        return expected_final(seed)

    def run_many(self, seeds: Sequence[int], timeout_s: float) -> list[int]:
        values = [expected_final(seed) for seed in seeds]
        if self.corrupt:
            values[-1] += 1
        return values

    def close(self) -> None:
        self.closed = True


def _run(peer: FakePeer) -> PeerResult:
    return run_peer(lambda: peer, QUICK)


def test_expected_values_and_percentiles_match_the_tasker_harness() -> None:
    assert [expected_final(seed) for seed in (2, 3, 4)] == [65536, 43046721, 4294967296]
    timings = [float(i) for i in range(1, 21)]
    assert (percentile(timings, 0.50), percentile(timings, 0.95)) == (10.0, 19.0)


def test_a_correct_peer_reports_both_workloads() -> None:
    peer = FakePeer()
    result = _run(peer)
    assert (result.ok, result.version, result.configuration, peer.closed) == (
        True,
        "1.0",
        "in memory",
        True,
    )
    assert result.metrics["runs"] == QUICK.latency_runs
    assert result.metrics["workflows"] == QUICK.throughput_workflows
    assert result.metrics["steps_per_s"] == pytest.approx(4 * result.metrics["workflows_per_s"])


def test_a_wrong_final_value_fails_the_row() -> None:
    result = _run(FakePeer(corrupt=True))
    assert not result.ok
    assert "FAILED: CheckFailed: throughput workflow 9" in result.check


def test_a_peer_that_crashes_is_reported_and_still_closed() -> None:
    peer = FakePeer(crash=True)
    result = _run(peer)
    assert (result.ok, peer.closed) == (False, True)
    assert result.check == "FAILED: RuntimeError: worker did not start"


def test_the_command_line_imports_no_peer_library() -> None:
    code = (
        "import sys, benchmarks.peers.__main__ as m; "
        "m._parse(['run', '--only', 'dbos-sqlite']); "
        "print(sorted({'dbos', 'celery', 'procrastinate', 'prefect'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
