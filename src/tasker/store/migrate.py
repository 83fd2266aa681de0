"""The one migration runner both backends use: numbered ``NNNN_name.sql`` files, in order."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Migration", "discover_migrations", "pending_migrations"]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def discover_migrations(directory: Path) -> list[Migration]:
    """Every migration in ``directory``, by version; gaps and duplicates are errors."""
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        match = _FILE.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(f"{directory}: migration {expected:04d} is missing")
    return found


def pending_migrations(directory: Path, current_version: Callable[[], int]) -> list[Migration]:
    """Migrations newer than the database's version."""
    version = current_version()
    return [m for m in discover_migrations(directory) if m.version > version]
