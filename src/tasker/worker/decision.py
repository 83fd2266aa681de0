"""Decision steps: choosing which branches of a template run (python-api.md §5.2, §6.1).

A decision handler returns a success whose ``result["decision_point_outcome"]`` the engine
reads (batch-and-decisions.md §1.2); everything else in the result is descriptive. The helpers
here build exactly that shape so handler code never spells it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from tasker.worker.handlers import StepHandler

if TYPE_CHECKING:
    from tasker.worker.results import StepHandlerResult

__all__ = [
    "Decision",
    "DecisionHandler",
    "DecisionMixin",
    "DecisionPointOutcome",
    "DecisionType",
]


class DecisionType(StrEnum):
    """The two outcome kinds the engine understands."""

    CREATE_STEPS = "create_steps"
    NO_BRANCHES = "no_branches"


class DecisionPointOutcome(BaseModel):
    """A decision in typed form, before it is turned into a result dict."""

    decision_type: DecisionType
    next_step_names: list[str] = Field(default_factory=list)
    dynamic_steps: list[dict[str, Any]] | None = None
    reason: str | None = None
    routing_context: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def create_steps(
        cls,
        step_names: list[str],
        dynamic_steps: list[dict[str, Any]] | None = None,
        routing_context: dict[str, Any] | None = None,
    ) -> DecisionPointOutcome:
        """Activate the named template steps.

        Args:
            step_names: template step names in this decision's segment.
            dynamic_steps: descriptive step definitions, passed through in the result.
            routing_context: why this route was chosen (descriptive).

        Returns:
            A ``create_steps`` outcome.
        """
        return cls(
            decision_type=DecisionType.CREATE_STEPS,
            next_step_names=list(step_names),
            dynamic_steps=dynamic_steps,
            routing_context=dict(routing_context or {}),
        )

    @classmethod
    def no_branches(
        cls, reason: str, routing_context: dict[str, Any] | None = None
    ) -> DecisionPointOutcome:
        """Activate nothing; the task completes once the existing steps are done.

        Args:
            reason: why no branch runs.
            routing_context: descriptive context.

        Returns:
            A ``no_branches`` outcome.
        """
        return cls(
            decision_type=DecisionType.NO_BRANCHES,
            reason=reason,
            routing_context=dict(routing_context or {}),
        )


@dataclass(frozen=True)
class Decision:
    """What a ``@decision_handler`` function returns: ``Decision.route(...)`` or ``.skip(...)``."""

    outcome: DecisionPointOutcome

    @staticmethod
    def route(steps: list[str], **routing_context: Any) -> Decision:
        """Activate ``steps``; keyword arguments become the ``routing_context``.

        Args:
            steps: template step names to create.
            **routing_context: descriptive context stored beside the outcome.

        Returns:
            The decision.
        """
        return Decision(DecisionPointOutcome.create_steps(steps, routing_context=routing_context))

    @staticmethod
    def skip(reason: str, **routing_context: Any) -> Decision:
        """Activate no branch.

        Args:
            reason: why nothing runs.
            **routing_context: descriptive context.

        Returns:
            The decision.
        """
        return Decision(DecisionPointOutcome.no_branches(reason, routing_context=routing_context))


class DecisionMixin:
    """Result helpers for decision handlers; combine with ``StepHandler`` in either order."""

    if TYPE_CHECKING:
        # Provided by StepHandler; declared so the helpers type-check inside the mixin.
        @property
        def name(self) -> str: ...

        @property
        def version(self) -> str: ...

        def success(
            self,
            result: dict[str, Any] | None = None,
            metadata: dict[str, Any] | None = None,
        ) -> StepHandlerResult: ...

        def failure(
            self,
            message: str,
            error_type: str = "handler_error",
            retryable: bool = True,
            metadata: dict[str, Any] | None = None,
            error_code: str | None = None,
        ) -> StepHandlerResult: ...

    @property
    def decision_capabilities(self) -> list[str]:
        """Capabilities a decision handler adds to ``StepHandler.capabilities``."""
        return ["decision", "routing"]

    def decision_success(
        self,
        steps: list[str],
        routing_context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Route to ``steps``.

        Args:
            steps: template step names to create (empty behaves like no branches).
            routing_context: stored as ``result["routing_context"]`` when non-empty.
            metadata: extra result metadata.

        Returns:
            A success with ``{"decision_point_outcome": {"type": "create_steps", ...}}``.
        """
        outcome = DecisionPointOutcome.create_steps(steps, routing_context=routing_context)
        return self.decision_success_with_outcome(outcome, metadata=metadata)

    def route_to_steps(
        self,
        step_names: list[str],
        routing_context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Alias of ``decision_success``, kept for ported handlers."""
        return self.decision_success(step_names, routing_context, metadata)

    def decision_success_with_outcome(
        self, outcome: DecisionPointOutcome, metadata: dict[str, Any] | None = None
    ) -> StepHandlerResult:
        """Turn a typed outcome into the result the engine reads.

        A ``no_branches`` outcome is delegated to ``decision_no_branches`` so the engine never
        sees ``step_names`` beside a ``no_branches`` type.

        Args:
            outcome: the decision.
            metadata: extra result metadata.

        Returns:
            The success result.
        """
        if outcome.decision_type is DecisionType.NO_BRANCHES:
            return self.decision_no_branches(outcome, metadata=metadata)
        result: dict[str, Any] = {
            "decision_point_outcome": {
                "type": DecisionType.CREATE_STEPS.value,
                "step_names": list(outcome.next_step_names),
            }
        }
        if outcome.dynamic_steps:
            result["dynamic_steps"] = outcome.dynamic_steps
        if outcome.routing_context:
            result["routing_context"] = outcome.routing_context
        return self.success(result, metadata=self._decision_metadata(metadata))

    def decision_no_branches(
        self, outcome: DecisionPointOutcome, metadata: dict[str, Any] | None = None
    ) -> StepHandlerResult:
        """Record a decision that activates nothing.

        Args:
            outcome: a ``no_branches`` outcome (its ``reason`` is copied to the result).
            metadata: extra result metadata.

        Returns:
            A success with ``{"decision_point_outcome": {"type": "no_branches"}, "reason": ...}``.
        """
        result: dict[str, Any] = {
            "decision_point_outcome": {"type": DecisionType.NO_BRANCHES.value},
            "reason": outcome.reason,
        }
        if outcome.routing_context:
            result["routing_context"] = outcome.routing_context
        return self.success(result, metadata=self._decision_metadata(metadata))

    def skip_branches(
        self,
        reason: str,
        routing_context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Activate no branch.

        Args:
            reason: why nothing runs.
            routing_context: stored when non-empty.
            metadata: extra result metadata.

        Returns:
            The ``no_branches`` success.
        """
        outcome = DecisionPointOutcome.no_branches(reason, routing_context=routing_context)
        return self.decision_no_branches(outcome, metadata=metadata)

    def decision_failure(
        self,
        message: str,
        error_type: str = "decision_error",
        retryable: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> StepHandlerResult:
        """Fail the decision step; not retried by default, since bad input rarely heals.

        Args:
            message: what could not be decided.
            error_type: classification, ``decision_error`` by default.
            retryable: whether another attempt may help.
            metadata: extra metadata.

        Returns:
            The failure.
        """
        return self.failure(
            message,
            error_type=error_type,
            retryable=retryable,
            metadata=self._decision_metadata(metadata),
        )

    def _decision_metadata(self, metadata: dict[str, Any] | None) -> dict[str, Any]:
        return {
            **(metadata or {}),
            "decision_handler": self.name,
            "decision_version": self.version,
        }


class DecisionHandler(DecisionMixin, StepHandler):
    """Back-compat base: ``DecisionMixin`` + ``StepHandler``; subclasses implement ``call``."""

    @property
    def capabilities(self) -> list[str]:
        """``StepHandler`` capabilities plus ``decision`` and ``routing``."""
        return [*super().capabilities, *self.decision_capabilities]
