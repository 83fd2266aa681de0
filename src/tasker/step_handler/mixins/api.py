"""Compatibility path ``tasker.step_handler.mixins.api``: the HTTP mixin (python-api.md §5.1)."""

from tasker.worker.api_mixin import APIMixin, ApiResponse

__all__ = ["APIMixin", "ApiResponse"]
