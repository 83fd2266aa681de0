"""Compatibility path ``tasker.models``: attribute-style views of the step data (§2.5)."""

from tasker.worker.models import (
    DependencyResultsWrapper,
    HandlerWrapper,
    StepDefinitionWrapper,
    TaskSequenceStepWrapper,
    TaskWrapper,
    WorkflowStepWrapper,
)

__all__ = [
    "DependencyResultsWrapper",
    "HandlerWrapper",
    "StepDefinitionWrapper",
    "TaskSequenceStepWrapper",
    "TaskWrapper",
    "WorkflowStepWrapper",
]
