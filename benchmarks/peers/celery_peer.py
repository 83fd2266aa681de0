"""Celery canvas: ``chain(square.s(seed), square.s(), square.s(), square.s())`` on Redis.

A ``celery worker`` subprocess with ``--concurrency=4`` (prefork processes or threads) runs the
tasks; the caller applies each chain and waits on the last task's ``AsyncResult.get``, which the
Redis result backend answers through pub/sub rather than polling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version as package_version
from typing import Any

from benchmarks.peers.services import ROOT, RedisServer

__all__ = ["CeleryPeer"]

CONCURRENCY = 4


class CeleryPeer:
    """Celery with Redis as broker and result backend, one worker process tree."""

    def __init__(self, pool: str = "prefork") -> None:
        self.name = f"celery-{pool}"
        self.pool = pool
        self.redis = RedisServer()
        self.worker: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.redis.dir, "worker.log")
        self.square: Any = None
        self.chain: Any = None

    def version(self) -> str:
        return package_version("celery")

    def configuration(self) -> str:
        return (
            f"Redis {self.redis.version()} broker + result backend (no persistence); "
            f"worker --pool={self.pool} --concurrency={CONCURRENCY}; Celery defaults "
            "(acks early, prefetch x4); caller: chain(...).apply_async().get()"
        )

    def start(self) -> None:
        self.redis.start()
        os.environ["PEERS_REDIS_URL"] = self.redis.url
        from celery import chain

        from benchmarks.peers import celery_app

        self.square = celery_app.square
        self.chain = chain
        env = {**os.environ, "PEERS_REDIS_URL": self.redis.url}
        with open(self.log_path, "wb") as log:
            self.worker = subprocess.Popen(
                [
                    sys.executable, "-m", "celery",
                    "-A", "benchmarks.peers.celery_app",
                    "worker",
                    f"--pool={self.pool}",
                    f"--concurrency={CONCURRENCY}",
                    "--loglevel=WARNING",
                    "--hostname=bench@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._wait_ready(celery_app.app)

    def _wait_ready(self, app: Any) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"celery worker exited; see {self.log_path}")
            replies = app.control.ping(timeout=0.5)
            if replies:
                return
        raise RuntimeError("celery worker did not answer ping within 60 s")

    def _submit(self, seed: int) -> Any:
        return self.chain(
            self.square.s(seed), self.square.s(), self.square.s(), self.square.s()
        ).apply_async()

    def run_one(self, seed: int, timeout_s: float) -> int:
        return int(self._submit(seed).get(timeout=timeout_s))

    def run_many(self, seeds: Sequence[int], timeout_s: float) -> list[int]:
        results = [self._submit(seed) for seed in seeds]
        deadline = time.monotonic() + timeout_s
        return [int(r.get(timeout=max(0.1, deadline - time.monotonic()))) for r in results]

    def close(self) -> None:
        try:
            if self.worker is not None and self.worker.poll() is None:
                self.worker.terminate()  # warm shutdown
                try:
                    self.worker.wait(20)
                except subprocess.TimeoutExpired:
                    self.worker.kill()
                    self.worker.wait()
        finally:
            self.redis.stop()
