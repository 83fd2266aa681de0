"""Ids sort by creation: UUIDv7 text, strictly increasing within a process (RFC 9562 §6.2)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

import tasker.store.sql as sql
from tasker.store.sql import new_uuid


def test_ids_made_in_one_millisecond_still_sort_in_the_order_they_were_made() -> None:
    ids = [new_uuid() for _ in range(20_000)]  # thousands per millisecond

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}


def test_ids_sort_in_creation_order_across_threads() -> None:
    made: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        for _ in range(2_000):
            with lock:  # the order they were made in is the order of the list
                made.append(new_uuid())

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_a_clock_that_steps_back_does_not_reorder_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_uuid()
    stepped_back = time.time_ns() - 60 * 10**9
    monkeypatch.setattr(sql.time, "time_ns", lambda: stepped_back)
    second = new_uuid()

    assert second > first
    assert uuid.UUID(second).version == 7
