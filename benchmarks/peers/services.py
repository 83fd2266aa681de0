"""Throwaway services the peers need: a Redis server and a PostgreSQL cluster.

Each is started on a free loopback port for one peer run and stopped (and its files deleted)
when that run ends, so no peer sees another's data and nothing is left running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresCluster", "RedisServer", "free_port"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` without persistence (no RDB, no AOF), on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="peers-redis.")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def version(self) -> str:
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=True
        ).stdout
        return next((p.split("=", 1)[1] for p in out.split() if p.startswith("v=")), out.strip())

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresCluster:
    """The project's ``scripts/pg-cluster.sh`` cluster (fsync off, on tmpfs when it fits): the
    same server settings tasker's own PostgreSQL figures are taken with."""

    def __init__(self) -> None:
        self.dsn = ""
        self.dir = ""

    def start(self) -> None:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "pg-cluster.sh"), "start"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in out.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if name == "TASKER_TEST_PG_DSN":
                self.dsn = value
            elif name == "TASKER_TEST_PG_DIR":
                self.dir = value
        if not self.dsn or not self.dir:
            raise RuntimeError(f"pg-cluster.sh start printed no DSN: {out!r}")

    def create_database(self, name: str) -> str:
        """A fresh database on the cluster; returns its DSN."""
        subprocess.run(
            ["psql", self.dsn, "-q", "-c", f"CREATE DATABASE {name}"],
            check=True,
            capture_output=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        return self.dsn.rsplit("/", 1)[0] + f"/{name}"

    def version(self) -> str:
        out = subprocess.run(
            ["psql", self.dsn, "-At", "-c", "SHOW server_version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.strip().split()[0]

    def stop(self) -> None:
        if self.dir:
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "pg-cluster.sh"), "stop", self.dir],
                check=False,
                capture_output=True,
            )
            self.dir = ""
