"""Loads a backend's ``queries.sql``: named, commented SQL statements (STYLE.md §7)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["load_queries", "load_query_files"]

_HEADER = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


def load_queries(path: Path) -> dict[str, str]:
    """Map each ``-- name: x`` header to the SQL text below it (comments stripped)."""
    text = path.read_text()
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";")
        if name in queries:
            raise ValueError(f"{path}: query {name!r} is defined twice")
        queries[name] = sql
    return queries


def load_query_files(directory: Path) -> dict[str, str]:
    """Every named query of ``queries.sql`` and ``queries_*.sql`` in a backend's directory."""
    merged: dict[str, str] = {}
    for path in sorted(directory.glob("queries*.sql")):
        for name, sql in load_queries(path).items():
            if name in merged:
                raise ValueError(f"{path}: query {name!r} is also defined in another file")
            merged[name] = sql
    return merged
