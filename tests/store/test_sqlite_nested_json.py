"""The SQLite store passes a set statement's JSON column values nested inside its JSON
parameter (``SqliteDialect.json_nested``) and reads them back with ``->>``: what is stored must
be, byte for byte, the text ``json_param`` gives the one-row statements."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tasker.store.sqlite import SqliteDialect

VALUES: list[Any] = [
    {},
    [],
    {"value": 1, "nested": {"list": [1, 2.5, 1e-05, 1e300, -0.0, 12345678901234567890]}},
    {"text": 'quote " backslash \\ newline \n tab \t é 漢 \u0001 / 😀', "none": None, "yes": True},
    [{"uuid": "u", "from": "in_progress", "to": "complete", "metadata": {"at": "2026-11-29"}}],
]


@pytest.mark.parametrize("value", VALUES)
def test_a_nested_value_reads_back_as_its_own_json_text(value: Any) -> None:
    dialect = SqliteDialect()
    conn = sqlite3.connect(":memory:")
    try:
        row = conn.execute(
            "SELECT value ->> 'x' FROM json_each(?)",
            (dialect.json_param([{"x": dialect.json_nested(value)}]),),
        ).fetchone()
    finally:
        conn.close()
    assert row[0] == dialect.json_param(value)
