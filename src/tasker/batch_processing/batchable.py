"""Compatibility path ``tasker.batch_processing.batchable``: ``Batchable`` and its value types."""

from tasker.worker.batch import Batchable, BatchAggregationScenario, BatchWorkerConfig

__all__ = ["BatchAggregationScenario", "BatchWorkerConfig", "Batchable"]
