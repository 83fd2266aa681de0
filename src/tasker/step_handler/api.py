"""Compatibility path ``tasker.step_handler.api``: ``ApiHandler`` (APIMixin + StepHandler)."""

from tasker.worker.api_mixin import ApiHandler, APIMixin, ApiResponse

__all__ = ["APIMixin", "ApiHandler", "ApiResponse"]
