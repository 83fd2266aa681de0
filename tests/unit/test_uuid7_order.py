"""Ids from ``new_uuid`` sort in the order they were made within a process, also within one
millisecond: claims take the oldest task first by its uuid (docs/decisions/0016)."""

from __future__ import annotations

import threading
import uuid

from tasker.store.sql import new_uuid


def test_ids_made_one_after_another_sort_in_that_order() -> None:
    ids = [new_uuid() for _ in range(5_000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}


def test_ids_of_several_threads_are_unique_and_each_threads_sort() -> None:
    made: dict[int, list[str]] = {}

    def make(n: int) -> None:
        made[n] = [new_uuid() for _ in range(2_000)]

    threads = [threading.Thread(target=make, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in made.values() for i in ids]
    assert len(set(every)) == len(every)
    for ids in made.values():
        assert ids == sorted(ids)
