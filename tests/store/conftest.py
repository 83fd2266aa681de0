"""Fixtures of the store tests: ``store``, an opened store on ``store_url`` (each backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasker.store import Store, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on a fresh database of the test's backend, closed afterwards."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
