"""Compatibility path ``tasker.batch_processing`` (python-api.md §1, §5.3): the batch mixin."""

from tasker.worker.batch import Batchable, BatchAggregationScenario, BatchWorkerConfig

__all__ = ["BatchAggregationScenario", "BatchWorkerConfig", "Batchable"]
