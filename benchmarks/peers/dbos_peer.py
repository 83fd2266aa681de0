"""DBOS Transact: a ``@DBOS.workflow`` that calls a ``@DBOS.step`` four times in sequence.

Latency starts each workflow with ``DBOS.start_workflow`` (it runs at once on DBOS's executor
threads and its handle resolves in-process, without polling). Throughput enqueues the 200
workflows on a queue registered with ``worker_concurrency=4`` (tasker's worker concurrency) and
waits on every handle. DBOS queues are polled: the default interval is 1 s, which would cap
this workload at about 4 workflows a second, so the queue polls every 10 ms and the handles are
polled every 10 ms too (``polling_interval_sec`` on both, each a documented parameter).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from importlib.metadata import version as package_version
from typing import Any

from dbos import DBOS

from benchmarks.peers.services import PostgresCluster

__all__ = ["DbosPeer"]

QUEUE_POLL_S = 0.01
RESULT_POLL_S = 0.01
WORKER_CONCURRENCY = 4


@DBOS.step()
def square(value: int) -> int:
    """One step: square the parent's value (checkpointed by DBOS after it returns)."""
    return value * value


@DBOS.workflow()
def linear4(seed: int) -> int:
    """Four steps in a chain, each squaring its parent's value."""
    value = seed
    for _ in range(4):
        value = square(value)
    return value


class DbosPeer:
    """DBOS with its system database on SQLite (a file in a temp dir) or a throwaway
    PostgreSQL cluster."""

    def __init__(self, backend: str = "sqlite") -> None:
        self.name = f"dbos-{backend}"
        self.backend = backend
        self.dir = tempfile.mkdtemp(prefix="peers-dbos.")
        self.cluster: PostgresCluster | None = None
        self.queue: Any = None
        self.launched = False

    def version(self) -> str:
        return package_version("dbos")

    def configuration(self) -> str:
        database = (
            "SQLite system database"
            if self.backend == "sqlite"
            else "PostgreSQL system database (pg-cluster.sh, fsync off)"
        )
        return (
            f"{database}; latency: DBOS.start_workflow + handle.get_result; throughput: "
            f"queue worker_concurrency={WORKER_CONCURRENCY}, polling {QUEUE_POLL_S * 1000:g} ms, "
            f"get_result polling {RESULT_POLL_S * 1000:g} ms"
        )

    def start(self) -> None:
        if self.backend == "sqlite":
            url = f"sqlite:///{self.dir}/dbos.sqlite"
        else:
            self.cluster = PostgresCluster()
            self.cluster.start()
            url = self.cluster.create_database("dbos_bench")
        DBOS(
            config={
                "name": "tasker-peer-bench",
                "system_database_url": url,
                "run_admin_server": False,
                "log_level": "WARNING",
            }
        )
        DBOS.launch()
        self.launched = True
        self.queue = DBOS.register_queue(
            "bench", worker_concurrency=WORKER_CONCURRENCY, polling_interval_sec=QUEUE_POLL_S
        )

    def run_one(self, seed: int, timeout_s: float) -> int:
        del timeout_s  # get_result has no timeout: the parent's subprocess limit applies
        handle = DBOS.start_workflow(linear4, seed)
        value: int = handle.get_result()
        return value

    def run_many(self, seeds: Sequence[int], timeout_s: float) -> list[int]:
        del timeout_s
        handles = [self.queue.enqueue(linear4, seed) for seed in seeds]
        return [int(h.get_result(polling_interval_sec=RESULT_POLL_S)) for h in handles]

    def close(self) -> None:
        try:
            if self.launched:
                DBOS.destroy(workflow_completion_timeout_sec=5)
        finally:
            if self.cluster is not None:
                self.cluster.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
