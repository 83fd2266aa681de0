"""Trivial step handlers for the benchmarks: cheap, deterministic, and checkable.

Every handler computes a value the harness can predict from the task context, so a run whose
results are wrong (a lost, duplicated or misrouted step) fails its check instead of reporting a
fast time. Handler names start with ``bench.`` so they never collide with a user's handlers.
"""

from __future__ import annotations

import math
from typing import Any

from tasker.worker.batch import Batchable
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

__all__ = ["Leaf", "SplitRows", "SquareProduct", "SumLeaves", "SumRows", "TotalRows", "row_value"]


def row_value(index: int) -> int:
    """The synthetic value of row ``index`` that batch workers add up."""
    return index % 97


class SquareProduct(StepHandler):
    """``value`` = (product of the parents' values) squared; a root squares the context's seed.

    The parents are the step's ``parents`` initialization list (the template names them), so
    a chain squares its parent and a diamond's join squares the product of both branches.
    """

    handler_name = "bench.square_product"

    def call(self, context: StepContext) -> StepHandlerResult:
        parents: list[str] = list(context.get_config("parents") or [])
        if parents:
            base = math.prod(int(context.get_dependency_field(p, "value")) for p in parents)
        else:
            base = int(context.get_input("seed"))
        return self.success({"value": base * base})


class Leaf(StepHandler):
    """One of the wide fan-out's parallel steps: ``value`` = its ``index`` squared."""

    handler_name = "bench.leaf"

    def call(self, context: StepContext) -> StepHandlerResult:
        index = int(context.get_config("index"))
        return self.success({"value": index * index})


class SumLeaves(StepHandler):
    """The wide fan-out's join: how many leaf results it saw and the sum of their values."""

    handler_name = "bench.sum_leaves"

    def call(self, context: StepContext) -> StepHandlerResult:
        values = [
            int(context.get_dependency_field(name, "value"))
            for name in context.get_dependency_result_keys()
            if name.startswith("leaf_")
        ]
        return self.success({"count": len(values), "value": sum(values)})


class SplitRows(Batchable, StepHandler):
    """The batch analyzer: cuts ``rows`` (task context) into ``batches`` cursor ranges."""

    handler_name = "bench.split_rows"

    def call(self, context: StepContext) -> StepHandlerResult:
        rows = int(context.get_input("rows"))
        batches = int(context.get_input("batches"))
        ranges = self.create_cursor_ranges(rows, math.ceil(rows / batches))
        return self.batch_analyzer_success(
            cursor_configs=ranges,
            total_items=rows,
            worker_template_name=str(context.get_config("worker_template_name")),
        )


class SumRows(Batchable, StepHandler):
    """A batch worker: adds up ``row_value`` over its cursor range, one row at a time."""

    handler_name = "bench.sum_rows"

    def call(self, context: StepContext) -> StepHandlerResult:
        batch = self.get_batch_context(context)
        if batch is None:
            return self.failure("not a batch worker", error_type="bad_inputs", retryable=False)
        total = sum(row_value(i) for i in range(batch.start_cursor, batch.end_cursor))
        return self.batch_worker_success(
            items_processed=batch.end_cursor - batch.start_cursor,
            last_cursor=batch.end_cursor,
            results=[{"sum": total}],
        )


class TotalRows(Batchable, StepHandler):
    """The convergence step: the workers' row counts and sums, added up."""

    handler_name = "bench.total_rows"

    def call(self, context: StepContext) -> StepHandlerResult:
        scenario = self.detect_aggregation_scenario(
            context.dependency_results, "split_rows", "sum_rows_"
        )

        def add_up(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
            return {
                "rows": sum(int(r["items_processed"]) for r in results.values()),
                "value": sum(int(r["results"][0]["sum"]) for r in results.values()),
            }

        return self.aggregate_batch_worker_results(
            scenario, zero_metrics={"rows": 0, "value": 0}, aggregation_fn=add_up
        )
