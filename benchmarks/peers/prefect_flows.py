"""The Prefect flow: ``linear4`` calls the ``square`` task four times in sequence.

Imported only after the peer has pointed ``PREFECT_HOME`` at a fresh directory, because Prefect
reads its settings when it is imported.
"""

from __future__ import annotations

from prefect import flow, task

__all__ = ["linear4", "square"]


@task
def square(value: int) -> int:
    """One step: square the parent's value (a task run recorded by the server)."""
    return value * value


@flow
def linear4(seed: int) -> int:
    """Four task runs in a chain, each squaring its parent's value."""
    value = seed
    for _ in range(4):
        value = square(value)
    return value
