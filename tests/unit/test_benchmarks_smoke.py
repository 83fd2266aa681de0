"""The benchmark harness, in its QUICK sizes on SQLite, so it cannot rot unnoticed.

Runs ``python -m benchmarks run --quick --json`` in-process and checks that every workload ran,
that its handlers' results checked out, and that it reported the figures and SQL counts the
performance docs rely on.
"""

from __future__ import annotations

import json

import pytest
from benchmarks.__main__ import main
from benchmarks.workloads import WORKLOADS

FIGURES = {
    "linear4_latency": {"p50_ms", "p95_ms"},
    "diamond4_latency": {"p50_ms", "p95_ms"},
    "linear4_throughput": {"wall_s", "tasks_per_s", "steps_per_s"},
    "diamond4_throughput": {"wall_s", "tasks_per_s", "steps_per_s"},
    "batch_1000": {"wall_s", "rows_per_s"},
    "wide_fanout": {"wall_s"},
    "linear4_scaling": {"ratio", "small_wall_s", "large_wall_s"},
}


@pytest.mark.timeout(30)
def test_quick_run_checks_every_workload_and_counts_sql(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "--backend", "sqlite", "--quick", "--json"])
    report = json.loads(capsys.readouterr().out)
    workloads = report["workloads"]
    assert set(workloads) == set(WORKLOADS) == set(FIGURES)
    failed = {name: w["check"] for name, w in workloads.items() if not w["ok"]}
    assert failed == {}
    assert (status, report["ok"]) == (0, True)
    for name, figures in FIGURES.items():
        got = workloads[name]
        assert figures <= set(got), name
        assert all(got[f] > 0 for f in figures), (name, got)
        # Statements and commits were counted (set-based statements serve many steps each,
        # so a step may cost less than one).
        assert got["statements_per_step"] > 0, (name, got)
        assert got["commits_per_step"] > 0, (name, got)
        assert got["counted_by"] == "store.stats"
    # QUICK sizes: 3 latency runs of 4 steps, 4 batch workers + analyzer + convergence, 20 leaves.
    steps = {name: w["steps"] for name, w in workloads.items()}
    assert (steps["linear4_latency"], steps["batch_1000"], steps["wide_fanout"]) == (12, 6, 21)


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_the_interleaved_ab_runs_both_checkouts_and_prints_the_paired_difference(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from benchmarks.ab import main as ab_main

    monkeypatch.setenv("TASKER_BENCH_DATABASE_URL", pg_dsn)
    repo = Path(__file__).resolve().parents[2]
    status = ab_main([str(repo), str(repo), "--runs", "3", "--workers", "1", "--concurrency", "1"])
    out = capsys.readouterr().out

    assert status == 0, out
    assert "linear4, one task at a time, 3 runs per side, 1 worker processes" in out
    assert "B - A, paired: median" in out
