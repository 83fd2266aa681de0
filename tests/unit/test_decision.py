"""Decision handlers: the result shapes the engine reads (batch-and-decisions.md §1.2)."""

from __future__ import annotations

import dataclasses

import pytest

from tasker.worker.context import StepContext
from tasker.worker.decision import (
    Decision,
    DecisionHandler,
    DecisionMixin,
    DecisionPointOutcome,
    DecisionType,
)
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult


class RouteRefund(DecisionHandler):
    handler_name = "route_refund"
    handler_version = "2.1.0"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.decision_success(["agent_review"])


class MixinLast(StepHandler, DecisionMixin):
    """Mixin after StepHandler, no handler_name: the class name is the handler name."""

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.skip_branches("nothing")


def test_decision_success_shape_and_metadata() -> None:
    result = RouteRefund().decision_success(["agent_review"], routing_context={"amount": 420})
    assert result.is_success
    assert result.result == {
        "decision_point_outcome": {"type": "create_steps", "step_names": ["agent_review"]},
        "routing_context": {"amount": 420},
    }
    assert result.metadata == {"decision_handler": "route_refund", "decision_version": "2.1.0"}


def test_decision_success_omits_empty_routing_context() -> None:
    result = RouteRefund().decision_success(["a", "b"], routing_context={})
    assert result.result == {
        "decision_point_outcome": {"type": "create_steps", "step_names": ["a", "b"]}
    }


def test_route_to_steps_is_decision_success() -> None:
    handler = RouteRefund()
    assert handler.route_to_steps(["x"], {"k": 1}, {"m": 2}) == handler.decision_success(
        ["x"], {"k": 1}, {"m": 2}
    )


def test_skip_branches_shape_with_mixin_after_step_handler() -> None:
    result = MixinLast().skip_branches("nothing to route", metadata={"trace": "t"})
    assert result.result == {
        "decision_point_outcome": {"type": "no_branches"},
        "reason": "nothing to route",
    }
    assert result.metadata == {
        "trace": "t",
        "decision_handler": "MixinLast",
        "decision_version": "1.0.0",
    }


def test_skip_branches_keeps_non_empty_routing_context() -> None:
    result = RouteRefund().skip_branches("none", routing_context={"tier": "free"})
    assert result.result is not None
    assert result.result["routing_context"] == {"tier": "free"}


def test_outcome_with_dynamic_steps_passes_them_through() -> None:
    outcome = DecisionPointOutcome.create_steps(["a"], dynamic_steps=[{"name": "a2"}])
    result = RouteRefund().decision_success_with_outcome(outcome)
    assert result.result == {
        "decision_point_outcome": {"type": "create_steps", "step_names": ["a"]},
        "dynamic_steps": [{"name": "a2"}],
    }


def test_no_branches_outcome_through_with_outcome_never_carries_step_names() -> None:
    outcome = DecisionPointOutcome.no_branches("quiet day")
    result = RouteRefund().decision_success_with_outcome(outcome)
    assert result.result == {
        "decision_point_outcome": {"type": "no_branches"},
        "reason": "quiet day",
    }


def test_decision_failure_is_permanent_by_default_and_tagged() -> None:
    caller_metadata = {"field": "amount"}
    result = RouteRefund().decision_failure("amount missing", metadata=caller_metadata)
    assert (result.is_success, result.error_type, result.retryable) == (
        False,
        "decision_error",
        False,
    )
    assert result.error_message == "amount missing"
    assert result.metadata == {
        "field": "amount",
        "decision_handler": "route_refund",
        "decision_version": "2.1.0",
    }
    assert caller_metadata == {"field": "amount"}


def test_decision_handler_capabilities() -> None:
    assert RouteRefund().capabilities == ["process", "decision", "routing"]


def test_outcome_factories() -> None:
    create = DecisionPointOutcome.create_steps(["a"], routing_context={"k": 1})
    skip = DecisionPointOutcome.no_branches("r")
    assert (create.decision_type, create.next_step_names, create.routing_context) == (
        DecisionType.CREATE_STEPS,
        ["a"],
        {"k": 1},
    )
    assert (skip.decision_type, skip.reason, skip.next_step_names) == (
        DecisionType.NO_BRANCHES,
        "r",
        [],
    )
    assert DecisionType("no_branches") is DecisionType.NO_BRANCHES


def test_decision_route_and_skip_collect_routing_context() -> None:
    route = Decision.route(["premium"], tier="gold", score=9)
    skip = Decision.skip("no match", tier="free")
    assert route.outcome == DecisionPointOutcome.create_steps(
        ["premium"], routing_context={"tier": "gold", "score": 9}
    )
    assert skip.outcome == DecisionPointOutcome.no_branches(
        "no match", routing_context={"tier": "free"}
    )


def test_decision_is_frozen() -> None:
    decision = Decision.skip("r")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.outcome = Decision.route(["a"]).outcome  # type: ignore[misc]  # frozen on purpose
