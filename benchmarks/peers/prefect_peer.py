"""Prefect 3: a ``@flow`` calling four ``@task`` runs in sequence, against its local server.

With no ``PREFECT_API_URL`` set, Prefect starts its temporary local server (a subprocess with a
SQLite database under ``PREFECT_HOME``, here a fresh temp dir) and every flow and task run is
recorded there. Latency calls the flow in the caller's thread; throughput runs 200 flow calls
on a pool of 4 threads (Prefect has no in-process queue of flow runs: deployments and workers
would add a polling worker process). Settings are Prefect's defaults except anonymous usage
analytics, which are off (there is no network here).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as package_version
from typing import Any

__all__ = ["PrefectPeer"]

THREADS = 4


class PrefectPeer:
    """Prefect flows run in this process; the temporary server keeps their state."""

    def __init__(self) -> None:
        self.name = "prefect"
        self.home = tempfile.mkdtemp(prefix="peers-prefect.")
        self.flow: Any = None

    def version(self) -> str:
        return package_version("prefect")

    def configuration(self) -> str:
        return (
            "temporary local server (SQLite); flow = 4 sequential task calls; latency: flow "
            f"call in the caller's thread; throughput: {THREADS} threads calling the flow"
        )

    def start(self) -> None:
        os.environ["PREFECT_HOME"] = self.home
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        os.environ.pop("PREFECT_API_URL", None)
        from benchmarks.peers.prefect_flows import linear4

        self.flow = linear4

    def run_one(self, seed: int, timeout_s: float) -> int:
        del timeout_s  # a flow call has no timeout here: the parent's subprocess limit applies
        return int(self.flow(seed))

    def run_many(self, seeds: Sequence[int], timeout_s: float) -> list[int]:
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(self.flow, seed) for seed in seeds]
            return [int(f.result(timeout=timeout_s)) for f in futures]

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
