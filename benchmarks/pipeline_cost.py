"""``python -m benchmarks.pipeline_cost``: what one pipelined transaction costs through psycopg,
against the same protocol messages sent through libpq directly.

    python -m benchmarks.pipeline_cost [--statements K] [--transactions N]

A step transaction of the PostgreSQL store is one pipeline of about nine prepared statements.
This sends N transactions of K prepared one-row statements and a Sync, three ways, and prints
the wall time, the client's CPU and its backend's CPU per transaction (from ``/proc``):

- ``psycopg``: ``Connection.execute`` for each statement inside ``Connection.pipeline()``, as
  the store does;
- ``libpq, flush each``: the same messages through ``pgconn``, flushed after each statement;
- ``libpq, flush once``: flushed once, after the Sync.

The server is the one ``TASKER_BENCH_DATABASE_URL`` names, else a throwaway cluster.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections.abc import Callable, Sequence

import psycopg
from psycopg import pq

from benchmarks.deployment import PostgresServer, cpu_s

__all__ = ["main"]

_WARMUP = 100
_QUERY = "SELECT %s::int + 1"


def _cpu_us(pid: int) -> float:
    seconds = cpu_s(pid)
    if seconds is None:
        raise RuntimeError(f"cannot read the CPU time of process {pid} (Linux /proc only)")
    return seconds * 1e6


def _measure(
    name: str, backend_pid: int, transaction: Callable[[], None], count: int
) -> tuple[str, float, float, float]:
    for _ in range(_WARMUP):
        transaction()
    client, backend, wall = time.process_time(), _cpu_us(backend_pid), time.perf_counter()
    for _ in range(count):
        transaction()
    return (
        name,
        (time.perf_counter() - wall) / count * 1e6,
        (time.process_time() - client) / count * 1e6,
        (_cpu_us(backend_pid) - backend) / count,
    )


def _psycopg(conn: psycopg.Connection[tuple[object, ...]], statements: int) -> Callable[[], None]:
    def transaction() -> None:
        with conn.pipeline():
            for _ in range(statements):
                conn.execute(_QUERY, [1], prepare=True)

    return transaction


def _libpq(pgconn: pq.abc.PGconn, statements: int, flush_each: bool) -> Callable[[], None]:
    def flush() -> None:
        while pgconn.flush():
            select.select([], [pgconn.socket], [])

    def transaction() -> None:
        pgconn.enter_pipeline_mode()
        for _ in range(statements):
            pgconn.send_query_prepared(b"one", [b"1"])
            if flush_each:
                flush()
        pgconn.pipeline_sync()
        flush()
        synced = False
        while not synced:
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
            while not synced and not pgconn.is_busy():
                result = pgconn.get_result()
                if result is not None and result.status == pq.ExecStatus.PIPELINE_SYNC:
                    synced = True
                elif result is not None and result.status != pq.ExecStatus.TUPLES_OK:
                    raise RuntimeError(result.get_error_message())
        pgconn.exit_pipeline_mode()

    return transaction


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_cost", description=__doc__)
    parser.add_argument("--statements", type=int, default=9, help="statements per transaction")
    parser.add_argument("--transactions", type=int, default=2000, help="transactions per way")
    args = parser.parse_args(argv)
    server = PostgresServer(os.environ.get("TASKER_BENCH_DATABASE_URL") or None)
    url = server.new_database()
    rows = []
    try:
        with (
            psycopg.connect(url, autocommit=True) as through_psycopg,
            psycopg.connect(url, autocommit=True) as through_libpq,
        ):
            pgconn = through_libpq.pgconn
            prepared = pgconn.prepare(b"one", b"SELECT $1::int + 1", None)
            if prepared.status != pq.ExecStatus.COMMAND_OK:
                raise RuntimeError(prepared.get_error_message())
            pgconn.nonblocking = 1
            for _ in range(2):  # twice: this VM drifts, and the second pair shows by how much
                rows.append(
                    _measure(
                        "psycopg",
                        through_psycopg.info.backend_pid,
                        _psycopg(through_psycopg, args.statements),
                        args.transactions,
                    )
                )
                for flush_each in (True, False):
                    rows.append(
                        _measure(
                            "libpq, flush each" if flush_each else "libpq, flush once",
                            through_libpq.info.backend_pid,
                            _libpq(pgconn, args.statements, flush_each),
                            args.transactions,
                        )
                    )
    finally:
        server.drop_database(url)
        server.close()
    print(f"{args.transactions} transactions of {args.statements} prepared statements + Sync")
    print(f"{'way':20s} {'wall us':>9s} {'client CPU us':>14s} {'backend CPU us':>15s}")
    for name, wall, client, backend in rows:
        print(f"{name:20s} {wall:9.0f} {client:14.0f} {backend:15.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
