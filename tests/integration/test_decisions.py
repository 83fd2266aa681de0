"""Decision points end to end, on every backend (batch-and-decisions.md §1).

Templates: tests/fixtures/templates/dynamic/{approval_routing,shipping_routing,refund_routing}.yaml;
handlers: tests/fixtures/handlers/dynamic_handlers.py (class form ``DecisionHandler`` for the
approval and refund routes, functional ``@decision_handler`` for shipping). What ran is read from
the stored steps and edges, and from the journal the handlers append to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasker.runtime import TaskView
from tests.fixtures.handlers.dynamic_handlers import read_journal
from tests.integration.conftest import (
    MakeTasker,
    dlq_rows,
    run_dynamic,
    task_edges,
    task_trail,
)

APPROVAL_BRANCHES = {"auto_approve", "manager_approval", "finance_review"}


def runs(journal: Path) -> list[str]:
    """Names of the steps that journaled a run or a decision, in order."""
    return [e["step"] for e in read_journal(journal) if e["event"] in ("run", "decided")]


def assert_all_complete_once(view: TaskView) -> None:
    assert view.state == "complete"
    seen = {name: (s.state, s.attempts) for name, s in view.steps.items()}
    assert seen == dict.fromkeys(view.steps, ("complete", 1))


def error_of(view: TaskView, step: str) -> dict[str, Any]:
    error = view.steps[step].error
    assert isinstance(error, dict), f"{step} has no error: {view.steps[step]}"
    return error


def outcome_of(view: TaskView, decision: str) -> Any:
    return view.steps[decision].result["decision_point_outcome"]


# -- approval routing: class form -------------------------------------------------------------


def test_small_amount_creates_and_runs_only_the_auto_approve_branch(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("approval_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(app, "approval_routing", {"amount": 250, "journal": str(journal)})

    assert_all_complete_once(view)
    assert set(view.steps) == {
        "validate_request",
        "route_approval",
        "auto_approve",
        "finalize_approval",
    }, "manager_approval and finance_review must never exist"
    assert outcome_of(view, "route_approval") == {
        "type": "create_steps",
        "step_names": ["auto_approve"],
    }
    assert view.steps["finalize_approval"].result == {
        "approvals": {"auto_approve": {"step": "auto_approve", "approved": True, "amount": 250}}
    }
    assert runs(journal) == [
        "validate_request",
        "route_approval",
        "auto_approve",
        "finalize_approval",
    ]
    assert task_edges(app, view.task_uuid) == {
        ("validate_request", "route_approval", "provides"),
        ("route_approval", "auto_approve", "provides"),
        ("auto_approve", "finalize_approval", "provides"),
    }


def test_large_amount_runs_manager_and_finance_in_parallel_then_converges_on_both(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("approval_routing")
    journal = tmp_path / "journal.jsonl"

    # rendezvous: each branch waits at a barrier for the other; run one after the other, both fail.
    view = run_dynamic(
        app, "approval_routing", {"amount": 5000, "rendezvous": 2, "journal": str(journal)}
    )

    assert_all_complete_once(view)
    assert set(view.steps) & APPROVAL_BRANCHES == {"manager_approval", "finance_review"}
    assert "auto_approve" not in view.steps
    approvals = view.steps["finalize_approval"].result["approvals"]
    assert approvals == {
        "manager_approval": {"step": "manager_approval", "approved": True, "amount": 5000},
        "finance_review": {"step": "finance_review", "approved": True, "amount": 5000},
    }
    order = runs(journal)
    assert order[:2] == ["validate_request", "route_approval"]
    assert sorted(order[2:4]) == ["finance_review", "manager_approval"]
    assert order[4:] == ["finalize_approval"], "convergence must run once, after both branches"
    finalize = [e for e in read_journal(journal) if e["step"] == "finalize_approval"]
    assert finalize[0]["ancestors"] == [
        "finance_review",
        "manager_approval",
        "route_approval",
        "validate_request",
    ]
    edges = task_edges(app, view.task_uuid)
    assert {(p, c) for p, c, _ in edges if c == "finalize_approval"} == {
        ("manager_approval", "finalize_approval"),
        ("finance_review", "finalize_approval"),
    }


def test_decision_that_skips_completes_the_task_without_branches_or_convergence(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("approval_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(app, "approval_routing", {"skip": True, "journal": str(journal)})

    assert_all_complete_once(view)
    assert set(view.steps) == {"validate_request", "route_approval"}
    assert outcome_of(view, "route_approval") == {"type": "no_branches"}
    assert view.steps["route_approval"].result["reason"] == "nothing to approve"
    assert runs(journal) == ["validate_request", "route_approval"]
    assert task_edges(app, view.task_uuid) == {("validate_request", "route_approval", "provides")}


def test_create_steps_with_no_names_behaves_like_no_branches(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("approval_routing")

    view = run_dynamic(app, "approval_routing", {"route_to": [], "journal": str(tmp_path / "j")})

    assert_all_complete_once(view)
    assert set(view.steps) == {"validate_request", "route_approval"}


def test_decision_naming_an_unknown_step_fails_permanently_and_creates_nothing(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("approval_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(
        app,
        "approval_routing",
        {"route_to": ["auto_approve", "wire_money"], "journal": str(journal)},
    )

    decision = view.steps["route_approval"]
    assert decision.state == "error"
    assert decision.attempts == 1, "an invalid outcome is permanent: no retry (max_attempts 3)"
    assert decision.error == {
        "message": "step 'wire_money' is not a valid descendant of decision point 'route_approval'",
        "error_type": "invalid_decision_outcome",
        "retryable": False,
    }
    assert set(view.steps) == {"validate_request", "route_approval"}, "nothing may be created"
    assert runs(journal).count("route_approval") == 1
    assert view.state == "error"
    states = [t.to_state for t in task_trail(app, view.task_uuid)]
    assert states[-2:] == ["blocked_by_failures", "error"]
    assert [r["dlq_reason"] for r in dlq_rows(app)] == ["max_retries_exceeded"]


def test_decision_naming_a_step_outside_its_segment_fails(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("approval_routing")

    view = run_dynamic(
        app, "approval_routing", {"route_to": ["validate_request"], "journal": str(tmp_path / "j")}
    )

    assert view.steps["route_approval"].state == "error"
    assert (
        "'validate_request' is not a valid descendant"
        in error_of(view, "route_approval")["message"]
    )
    assert view.state == "error"


# -- forward closure (the refund_routing worked example) --------------------------------------


def test_chosen_branch_brings_its_followers_and_a_convergence_that_ignores_the_other_branch(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("refund_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(app, "refund_routing", {"amount": 420, "journal": str(journal)})

    assert_all_complete_once(view)
    assert set(view.steps) == {
        "check_refund",
        "choose_path",
        "agent_review",
        "supervisor_review",
        "close_ticket",
    }
    assert task_edges(app, view.task_uuid) == {
        ("check_refund", "choose_path", "provides"),
        ("choose_path", "agent_review", "provides"),
        ("agent_review", "supervisor_review", "provides"),
        ("supervisor_review", "close_ticket", "provides"),
    }
    assert runs(journal) == ["check_refund", "agent_review", "supervisor_review", "close_ticket"]


def test_refund_under_the_limit_converges_on_auto_refund_alone(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("refund_routing")

    view = run_dynamic(app, "refund_routing", {"amount": 40, "journal": str(tmp_path / "j")})

    assert_all_complete_once(view)
    assert set(view.steps) == {"check_refund", "choose_path", "auto_refund", "close_ticket"}
    assert view.steps["close_ticket"].result["ancestors"] == [
        "auto_refund",
        "check_refund",
        "choose_path",
    ]


# -- shipping routing: functional form --------------------------------------------------------


@pytest.mark.parametrize(
    ("weight_kg", "carrier"), [(50, "freight"), (20, "freight"), (3, "parcel")]
)
def test_functional_decision_routes_by_weight_and_convergence_sees_only_that_carrier(
    make_dynamic: MakeTasker, tmp_path: Path, weight_kg: int, carrier: str
) -> None:
    app = make_dynamic("shipping_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(app, "shipping_routing", {"weight_kg": weight_kg, "journal": str(journal)})

    assert_all_complete_once(view)
    assert set(view.steps) == {"weigh", "route_shipping", carrier, "ship"}
    decision = view.steps["route_shipping"].result
    assert decision["decision_point_outcome"] == {"type": "create_steps", "step_names": [carrier]}
    assert decision["routing_context"] == {"weight_kg": weight_kg}
    assert view.steps["ship"].result == {"carriers": [carrier]}
    assert runs(journal) == ["weigh", "route_shipping", carrier, "ship"]


def test_functional_decision_skip_completes_without_carriers(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("shipping_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(app, "shipping_routing", {"journal": str(journal)})

    assert_all_complete_once(view)
    assert set(view.steps) == {"weigh", "route_shipping"}
    result = view.steps["route_shipping"].result
    assert result["decision_point_outcome"] == {"type": "no_branches"}
    assert result["reason"] == "nothing to ship"
    assert "ship" not in runs(journal)


def test_functional_decision_naming_an_unknown_step_fails_without_retry(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("shipping_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(
        app, "shipping_routing", {"force_route": ["teleport"], "journal": str(journal)}
    )

    decision = view.steps["route_shipping"]
    assert (decision.state, decision.attempts) == ("error", 1)
    assert error_of(view, "route_shipping") == {
        "message": "step 'teleport' is not a valid descendant of decision point 'route_shipping'",
        "error_type": "invalid_decision_outcome",
        "retryable": False,
    }
    assert [e["step"] for e in read_journal(journal)].count("route_shipping") == 1
    assert set(view.steps) == {"weigh", "route_shipping"}
    assert view.state == "error"


# -- a decision behind a decision --------------------------------------------------------------


def test_inner_decision_alone_creates_its_branches_and_the_convergence_waits_for_them(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("nested_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(
        app,
        "nested_routing",
        {"routes": {"outer": ["a"], "inner": ["b"]}, "journal": str(journal)},
    )

    assert_all_complete_once(view)
    assert set(view.steps) == {"start", "outer", "a", "inner", "b", "joined", "after"}
    assert runs(journal) == ["start", "a", "b", "joined", "after"]
    assert view.steps["joined"].result["ancestors"] == ["a", "b", "inner", "outer", "start"]
    assert {(p, c) for p, c, _ in task_edges(app, view.task_uuid) if c == "joined"} == {
        ("b", "joined")
    }


def test_inner_decision_that_skips_leaves_its_branches_uncreated(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("nested_routing")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(
        app,
        "nested_routing",
        {"routes": {"outer": ["a"], "inner": None}, "journal": str(journal)},
    )

    assert_all_complete_once(view)
    assert set(view.steps) == {"start", "outer", "a", "inner"}, "b and c are inner's to create"
    assert view.steps["inner"].result["decision_point_outcome"] == {"type": "no_branches"}
    assert runs(journal) == ["start", "a"]


# -- a batch inside a decision branch ---------------------------------------------------------


def test_a_convergence_waits_for_a_batch_total_created_after_it(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    """The decision creates ``final`` with ``quick``; the batch's total appears later and gets
    its late edge to ``final`` while ``final`` is still pending (quick is slow on purpose)."""
    app = make_dynamic("routed_batch")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(
        app,
        "routed_batch",
        {
            "routes": {"route": ["quick", "plan_ranges"]},
            "delays": {"quick": 0.5},
            "total_items": 250,
            "batch_size": 100,
            "journal": str(journal),
        },
    )

    assert_all_complete_once(view)
    assert view.steps["total_range"].result["total"] == sum(range(250))
    assert view.steps["final"].result["ancestors"] == sorted(
        [
            "start",
            "quick",
            "route",
            "plan_ranges",
            "total_range",
            *(f"sum_range_{i:03}" for i in (1, 2, 3)),
        ]
    )
    parents = {p for p, c, _ in task_edges(app, view.task_uuid) if c == "final"}
    assert parents == {"quick", "total_range"}
    assert runs(journal)[-2:] == ["final", "after"]


def test_a_convergence_behind_only_a_batch_is_created_by_the_batch(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    """The decision chooses only the batch: ``final`` is created with ``total_range`` and waits
    only for it; ``quick`` never exists."""
    app = make_dynamic("routed_batch")
    journal = tmp_path / "journal.jsonl"

    view = run_dynamic(
        app,
        "routed_batch",
        {
            "routes": {"route": ["plan_ranges"]},
            "total_items": 150,
            "batch_size": 100,
            "journal": str(journal),
        },
    )

    assert_all_complete_once(view)
    assert "quick" not in view.steps
    assert {"total_range", "final", "after"} <= set(view.steps)
    parents = {p for p, c, _ in task_edges(app, view.task_uuid) if c == "final"}
    assert parents == {"total_range"}
    assert runs(journal)[-2:] == ["final", "after"]
