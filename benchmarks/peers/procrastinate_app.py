"""The procrastinate application: a hand-built linear DAG on a PostgreSQL job queue.

One task, ``bench.step``, is a node of the chain: it squares its parent's value, records the
result in ``bench_results`` (the queue itself keeps no results) and defers the next node as a
new job, so the chain lives in the job arguments. The caller polls ``bench_results`` for the
fourth node's row. The connection string comes from ``PEERS_PG_DSN``.
"""

from __future__ import annotations

import os

from procrastinate import App, JobContext, PsycopgConnector

__all__ = ["RESULTS_DDL", "app", "step"]

STEPS = 4

RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS bench_results (
    workflow text NOT NULL,
    node int NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (workflow, node)
)
"""

app = App(connector=PsycopgConnector(conninfo=os.environ.get("PEERS_PG_DSN", "")))


@app.task(name="bench.step", pass_context=True)
async def step(context: JobContext, workflow: str, node: int, value: int) -> int:
    """Square the parent's value, record it, and defer the next node unless this is the last."""
    result = value * value
    await context.app.connector.execute_query_async(
        "INSERT INTO bench_results (workflow, node, value) VALUES (%(w)s, %(n)s, %(v)s)",
        w=workflow,
        n=node,
        v=result,
    )
    if node < STEPS:
        await step.defer_async(workflow=workflow, node=node + 1, value=result)
    return result
