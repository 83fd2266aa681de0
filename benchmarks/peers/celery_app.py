"""The Celery application the peer's worker subprocess loads (``celery -A`` needs a module).

Broker and result backend are the throwaway Redis server whose URL the peer passes in
``PEERS_REDIS_URL``. Everything else is Celery's default (early acks, prefetch multiplier 4),
except JSON serialization stated explicitly and the result expiry, which does not matter here.
"""

from __future__ import annotations

import os

from celery import Celery

__all__ = ["app", "square"]

_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("tasker_peer_bench", broker=_URL, backend=_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.square")
def square(value: int) -> int:
    """One step of the chain: square the previous task's result."""
    return value * value
