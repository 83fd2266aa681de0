"""Compatibility path ``tasker.step_handler.decision``: ``DecisionHandler`` (python-api.md §5.2)."""

from tasker.worker.decision import (
    DecisionHandler,
    DecisionMixin,
    DecisionPointOutcome,
    DecisionType,
)

__all__ = ["DecisionHandler", "DecisionMixin", "DecisionPointOutcome", "DecisionType"]
