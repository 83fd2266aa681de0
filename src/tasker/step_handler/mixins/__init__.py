"""Compatibility path ``tasker.step_handler.mixins`` (python-api.md §1, §5): handler mixins."""

from tasker.worker.api_mixin import APIMixin, ApiResponse
from tasker.worker.decision import DecisionMixin

__all__ = ["APIMixin", "ApiResponse", "DecisionMixin"]
