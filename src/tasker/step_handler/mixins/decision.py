"""Compatibility path ``tasker.step_handler.mixins.decision``: the decision mixin (§5.2)."""

from tasker.worker.decision import DecisionMixin

__all__ = ["DecisionMixin"]
