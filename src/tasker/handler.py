"""Compatibility path ``tasker.handler``: ``HandlerRegistry`` and ``StepHandler`` (§7.2)."""

from tasker.worker.handlers import HandlerRegistry, HandlerSpec, StepHandler

__all__ = ["HandlerRegistry", "HandlerSpec", "StepHandler"]
