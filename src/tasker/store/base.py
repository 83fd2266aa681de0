"""The store contract that orchestration and workers rely on.

Both backends share one transaction class (``tasker.store.sql.SqlTransaction``): its methods
are the persistence operations, each documented there with its compare-and-set meaning. A
backend differs only in how it opens connections, locks and wakes workers, which ``Store`` names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from tasker.store.sql import SqlTransaction, StoreStats

__all__ = ["Store", "Transaction"]

Transaction = SqlTransaction


class Store(Protocol):
    """A database tasker runs on. Many processes may open the same database at once."""

    backend: str
    url: str
    processor_uuid: str
    stats: StoreStats

    def transaction(self) -> AbstractContextManager[SqlTransaction]:
        """A write transaction: commits on success, rolls back on error, then wakes workers
        when it enqueued steps."""
        ...

    def read(self) -> AbstractContextManager[SqlTransaction]:
        """A read-only snapshot."""
        ...

    def migrate(self) -> int:
        """Apply pending schema migrations; returns how many ran."""
        ...

    def notify_work(self) -> None:
        """Tell idle workers (in every process) that steps were enqueued."""
        ...

    def work_sequence(self) -> int:
        """A counter that changes whenever work is announced."""
        ...

    def wait_for_work(self, seen: int, timeout_s: float) -> int:
        """Sleep until work is announced after ``seen`` or ``timeout_s`` passes."""
        ...

    def on_settled(self, callback: Callable[[Iterable[str]], None]) -> None:
        """Call ``callback`` with the uuids of tasks that another process settled (best effort:
        a backend without cross-process notifications never calls it; waiters poll anyway)."""
        ...

    def hears_settles(self) -> bool:
        """Whether other processes' settles reach ``on_settled`` callbacks right now
        (PostgreSQL while its ``LISTEN`` connection is up)."""
        ...

    def close(self) -> None: ...
