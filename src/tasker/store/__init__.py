"""Persistence: one contract (``Store``), a SQLite and a PostgreSQL implementation."""

from __future__ import annotations

from pathlib import Path

from tasker.errors import ConfigError
from tasker.store.base import Store, Transaction

__all__ = ["Store", "Transaction", "open_store"]


def open_store(url: str, *, migrate: bool = True, pool_size: int | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///path`` (default backend) or ``postgresql://…``.

    ``pool_size`` bounds a PostgreSQL store's connection pool (SQLite has no pool).

    Raises:
        ConfigError: the URL names no backend we know.
    """
    if url.startswith("sqlite:///"):
        from tasker.store.sqlite import SqliteStore

        return SqliteStore(Path(url.removeprefix("sqlite:///")), migrate=migrate)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from tasker.store.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                f"PostgreSQL support is not available ({exc}); install tasker[postgres]"
            ) from exc
        options = {} if pool_size is None else {"max_connections": pool_size}
        store: Store = PostgresStore(url, migrate=migrate, **options)
        return store
    raise ConfigError(
        f"unknown database URL {url!r}: use sqlite:///path/to/file.db or postgresql://…"
    )
