"""procrastinate (PostgreSQL job queue) with the chain built by hand: each job defers the next.

A ``procrastinate worker --concurrency=4`` subprocess (async tasks, LISTEN/NOTIFY on, other
options default) runs the jobs against a throwaway ``scripts/pg-cluster.sh`` server, the same
server settings as tasker's PostgreSQL figures. The caller defers node 1 and, like tasker's
harness with worker processes, polls for the final row every 1 ms (latency) or polls the count
of final rows every 10 ms (throughput).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from importlib.metadata import version as package_version
from typing import IO, Any

from benchmarks.peers.services import ROOT, PostgresCluster

__all__ = ["ProcrastinatePeer"]

CONCURRENCY = 4


class ProcrastinatePeer:
    """procrastinate's PsycopgConnector, one worker process, results in a side table."""

    def __init__(self) -> None:
        self.name = "procrastinate"
        self.cluster = PostgresCluster()
        self.worker: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="peers-procrastinate.")
        self.log_path = os.path.join(self.dir, "worker.log")
        self.app: Any = None
        self.step: Any = None
        self.db: Any = None

    def version(self) -> str:
        return package_version("procrastinate")

    def configuration(self) -> str:
        server = self.cluster.version() if self.cluster.dsn else "?"
        return (
            f"PostgreSQL {server} (pg-cluster.sh, fsync off); 1 worker process, async tasks, "
            f"--concurrency={CONCURRENCY}, LISTEN/NOTIFY; each job defers the next; "
            "caller polls a results table (1 ms / 10 ms)"
        )

    def start(self) -> None:
        import psycopg

        self.cluster.start()
        dsn = self.cluster.create_database("procrastinate_bench")
        os.environ["PEERS_PG_DSN"] = dsn
        from benchmarks.peers import procrastinate_app

        self.app = procrastinate_app.app
        self.step = procrastinate_app.step
        self.app.open()
        self.app.schema_manager.apply_schema()
        self.db = psycopg.connect(dsn, autocommit=True)
        self.db.execute(procrastinate_app.RESULTS_DDL)
        with open(self.log_path, "wb") as log:
            self.worker = self._spawn_worker(dsn, log)
        # A job deferred before the worker LISTENs waits for its 5 s fallback poll: run one
        # workflow through first so the timed runs start with a listening worker.
        self.run_one(2, 60.0)

    def _spawn_worker(self, dsn: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable, "-m", "procrastinate",
                "--app=benchmarks.peers.procrastinate_app.app",
                "worker",
                f"--concurrency={CONCURRENCY}",
            ],
            cwd=ROOT,
            env={**os.environ, "PEERS_PG_DSN": dsn},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def _defer(self, seed: int) -> str:
        workflow = uuid.uuid4().hex
        self.step.defer(workflow=workflow, node=1, value=seed)
        return workflow

    def _check_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is not None:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                tail = log.read()[-2000:]
            raise RuntimeError(f"procrastinate worker exited: {tail}")

    def run_one(self, seed: int, timeout_s: float) -> int:
        workflow = self._defer(seed)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.db.execute(
                "SELECT value FROM bench_results WHERE workflow = %s AND node = 4", (workflow,)
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.001)
        self._check_worker()
        raise TimeoutError(f"workflow {workflow} not finished within {timeout_s:g} s")

    def run_many(self, seeds: Sequence[int], timeout_s: float) -> list[int]:
        workflows = [self._defer(seed) for seed in seeds]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.db.execute(
                "SELECT count(*) FROM bench_results WHERE node = 4 AND workflow = ANY(%s)",
                (workflows,),
            ).fetchone()
            if row is not None and row[0] >= len(workflows):
                break
            time.sleep(0.01)
        else:
            self._check_worker()
            raise TimeoutError(f"{len(workflows)} workflows not finished within {timeout_s:g} s")
        values = dict(
            self.db.execute(
                "SELECT workflow, value FROM bench_results WHERE node = 4 AND workflow = ANY(%s)",
                (workflows,),
            ).fetchall()
        )
        return [int(values[w]) for w in workflows]

    def close(self) -> None:
        try:
            if self.worker is not None and self.worker.poll() is None:
                self.worker.terminate()
                try:
                    self.worker.wait(20)
                except subprocess.TimeoutExpired:
                    self.worker.kill()
                    self.worker.wait()
            if self.db is not None:
                self.db.close()
            if self.app is not None:
                self.app.close()
        finally:
            self.cluster.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
