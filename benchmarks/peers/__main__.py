"""``python -m benchmarks.peers run``: tasker's linear4 protocol on peer engines, one table.

    python -m benchmarks.peers run [--only PEER,...] [--repeat N] [--json] [--quick] [--lock PATH]
    python -m benchmarks.peers one PEER [--quick]      # one peer, in this process, JSON out

``run`` starts one ``flock LOCK python -m benchmarks.peers one PEER`` subprocess per peer, so
each peer gets a fresh interpreter (DBOS and Prefect keep process-wide state) and no timed run
overlaps another benchmark holding the same lock. ``--repeat N`` runs N rounds of every peer
(interleaved, so a burst of load elsewhere on the machine hits all peers alike) and the table
shows each figure's median with its range. Exit status: 0 when every row's values checked
out, 1 when one did not, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from benchmarks.peers.protocol import QUICK, Peer, PeerResult, Scale, run_peer

__all__ = ["PEERS", "main"]


def _tasker(name: str, backend: str, workers: int) -> Callable[[Scale], PeerResult]:
    def run(scale: Scale) -> PeerResult:
        from benchmarks.peers.tasker_peer import run_tasker

        return run_tasker(name, backend, workers, scale)

    return run


def _peer(make: Callable[[], Peer]) -> Callable[[Scale], PeerResult]:
    def run(scale: Scale) -> PeerResult:
        return run_peer(make, scale)

    return run


def _dbos(backend: str) -> Peer:
    from benchmarks.peers.dbos_peer import DbosPeer

    return DbosPeer(backend)


def _celery(pool: str) -> Peer:
    from benchmarks.peers.celery_peer import CeleryPeer

    return CeleryPeer(pool)


def _procrastinate() -> Peer:
    from benchmarks.peers.procrastinate_peer import ProcrastinatePeer

    return ProcrastinatePeer()


def _prefect() -> Peer:
    from benchmarks.peers.prefect_peer import PrefectPeer

    return PrefectPeer()


# Order of the table. Each entry runs in its own locked subprocess.
PEERS: dict[str, Callable[[Scale], PeerResult]] = {
    "tasker-sqlite": _tasker("tasker-sqlite", "sqlite", 0),
    "tasker-postgres": _tasker("tasker-postgres", "postgres", 2),
    # Workers in the caller's process, like DBOS: not in the default run (see README.md).
    "tasker-postgres-inproc": _tasker("tasker-postgres-inproc", "postgres", 0),
    "dbos-sqlite": _peer(lambda: _dbos("sqlite")),
    "dbos-postgres": _peer(lambda: _dbos("postgres")),
    "celery-prefork": _peer(lambda: _celery("prefork")),
    "celery-threads": _peer(lambda: _celery("threads")),
    "procrastinate": _peer(_procrastinate),
    "prefect": _peer(_prefect),
}

DEFAULT = [name for name in PEERS if name != "tasker-postgres-inproc"]

PEER_TIMEOUT_S = 900.0


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers", description=(__doc__ or "").split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the peers, each in a locked subprocess")
    run.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(PEERS)}")
    run.add_argument("--repeat", type=int, default=1, help="rounds of every peer (median shown)")
    run.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    run.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness only")
    run.add_argument(
        "--lock",
        default="/tmp/bench.lock",
        help="flock(1) file held around each peer's run; '' runs without it",
    )
    run.add_argument("--save", metavar="PATH", help="also write the JSON report to PATH")
    one = commands.add_parser("one", help="run one peer in this process and print its JSON")
    one.add_argument("peer", choices=list(PEERS))
    one.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        args.peers = [n.strip() for n in args.only.split(",") if n.strip()] or list(DEFAULT)
        unknown = [n for n in args.peers if n not in PEERS]
        if unknown:
            parser.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")
        if args.repeat < 1:
            parser.error("--repeat must be >= 1")
    return args


def _run_one_subprocess(name: str, quick: bool, lock: str) -> PeerResult:
    """Run ``one NAME`` under ``flock``; its last stdout line is the row's JSON."""
    command = [sys.executable, "-m", "benchmarks.peers", "one", name]
    if quick:
        command.append("--quick")
    if lock:
        if shutil.which("flock") is None:
            raise SystemExit("flock(1) is not installed; pass --lock '' to run without it")
        command = ["flock", lock, *command]
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=PEER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return PeerResult(name, check=f"FAILED: no answer within {PEER_TIMEOUT_S:g} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return PeerResult(name, check=f"FAILED: exit {done.returncode} without a result")
    data: dict[str, Any] = json.loads(lines[-1])
    result = PeerResult(
        data["peer"],
        version=data["version"],
        configuration=data["configuration"],
        ok=data["ok"],
        check=data["check"],
        notes=data.get("notes", []),
    )
    skip = {"peer", "version", "configuration", "ok", "check", "notes"}
    result.metrics = {k: float(v) for k, v in data.items() if k not in skip and v is not None}
    return result


def _combine(runs: list[PeerResult]) -> PeerResult:
    """One row from several rounds: each metric's median over the rounds that checked out."""
    good = [r for r in runs if r.ok]
    first = (good or runs)[0]
    failed = [r for r in runs if not r.ok]
    row = PeerResult(first.peer, first.version, first.configuration, ok=not failed)
    row.check = failed[0].check if failed else first.check
    for key in first.metrics:
        values = [r.metrics[key] for r in good if key in r.metrics]
        if values:
            row.metrics[key] = statistics.median(values)
    row.notes = [note for r in runs for note in r.notes]
    return row


def _figure(runs: list[PeerResult], key: str, digits: int) -> str:
    values = [r.metrics[key] for r in runs if r.ok and key in r.metrics]
    if not values:
        return "-"
    median = f"{statistics.median(values):,.{digits}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def _table(report: dict[str, Any], runs: dict[str, list[PeerResult]]) -> str:
    header = ("peer", "version", "P50 ms", "P95 ms", "steps/s", "check", "configuration")
    rows = [header]
    for peer_runs in runs.values():
        r = _combine(peer_runs)
        rows.append(
            (
                r.peer,
                r.version,
                _figure(peer_runs, "p50_ms", 1),
                _figure(peer_runs, "p95_ms", 1),
                _figure(peer_runs, "steps_per_s", 0),
                "ok" if r.ok else r.check,
                r.configuration,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        f"tasker vs peers, {report['date']}: linear4_latency (P50/P95, 20 runs after 3 warm-ups) "
        f"and linear4_throughput ({report['workflows']} workflows at once), "
        f"{report['machine']['cpus']} CPUs{' (QUICK sizes)' if report['quick'] else ''}"
        + (f", median (min-max) of {report['repeat']} rounds" if report["repeat"] > 1 else ""),
        "",
    ]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    scale = QUICK if args.quick else Scale()
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    runs: dict[str, list[PeerResult]] = {name: [] for name in args.peers}
    for round_ in range(args.repeat):
        for name in args.peers:
            print(f"peers: round {round_ + 1}: {name} ...", file=sys.stderr, flush=True)
            runs[name].append(_run_one_subprocess(name, args.quick, args.lock))
    report: dict[str, Any] = {
        "date": started_at.isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeat": args.repeat,
        "workflows": scale.throughput_workflows,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "duration_s": round(time.perf_counter() - started, 1),
        "ok": all(r.ok for peer_runs in runs.values() for r in peer_runs),
        "peers": [
            {**_combine(peer_runs).to_dict(), "rounds": [r.to_dict() for r in peer_runs]}
            for peer_runs in runs.values()
        ],
    }
    text = json.dumps(report, indent=2)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text if args.json else _table(report, runs))
    return 0 if report["ok"] else 1


def one(args: argparse.Namespace) -> int:
    scale = QUICK if args.quick else Scale()
    result = PEERS[args.peer](scale)
    sys.stdout.flush()
    print(json.dumps(result.to_dict()), flush=True)
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    return run(args) if args.command == "run" else one(args)


if __name__ == "__main__":
    sys.exit(main())
