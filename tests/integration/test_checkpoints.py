"""Checkpoint yields and resume after failure, on every backend (batch-and-decisions.md §3).

``checkpointed_sum`` adds up the task context's ``values``, yielding a checkpoint every ``every``
items; the handler journals each invocation (what its StepContext showed) and each item.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.fixtures.handlers.dynamic_handlers import read_journal
from tests.integration.conftest import MakeTasker, run_dynamic, step_trail, task_steps

ITEMS = 600
EVERY = 50
FAIL_AT = 317
LAST_CHECKPOINT = FAIL_AT // EVERY * EVERY  # 300: the last checkpoint committed before the failure


def values() -> list[int]:
    """Distinct, uneven values: a lost or doubled item changes the sum."""
    return [(i * 7919) % 1009 + i for i in range(ITEMS)]


def context(journal: Path, **knobs: Any) -> dict[str, Any]:
    return {"values": values(), "every": EVERY, "journal": str(journal), **knobs}


def test_retry_resumes_from_the_last_checkpoint_and_the_sum_is_exact(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    app = make_dynamic("checkpointed_sum")

    view = run_dynamic(app, "checkpointed_sum", context(journal, fail_at=FAIL_AT))

    step = view.steps["sum_values"]
    assert view.state == "complete"
    assert (step.state, step.attempts) == ("complete", 2), "yields must not count as attempts"
    assert step.result == {"sum": sum(values()), "items_processed": ITEMS}
    entries = read_journal(journal)
    times = Counter(e["index"] for e in entries if e["event"] == "item")
    assert set(times) == set(range(ITEMS))
    twice = sorted(i for i, n in times.items() if n == 2)
    assert twice == list(range(LAST_CHECKPOINT, FAIL_AT)), "only items after the checkpoint rerun"
    assert max(times.values()) == 2
    invokes = [(e["retry_count"], e["cursor"]) for e in entries if e["event"] == "invoke"]
    first_attempt = [(0, None), *((0, c) for c in range(EVERY, LAST_CHECKPOINT + 1, EVERY))]
    second_attempt = [(1, c) for c in range(LAST_CHECKPOINT, ITEMS, EVERY)]
    assert invokes == first_attempt + second_attempt
    # Exactly one failure moved the state machine: yields write no transition.
    trail = [t.to_state for t in step_trail(app, step.step_uuid)]
    assert trail.count("in_progress") == 2
    assert trail.count("waiting_for_retry") == 1


def test_rerun_context_shows_the_last_committed_checkpoint(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    app = make_dynamic("checkpointed_sum")

    run_dynamic(app, "checkpointed_sum", context(journal, fail_at=FAIL_AT))

    invokes = [e for e in read_journal(journal) if e["event"] == "invoke"]
    first = invokes[0]
    assert (first["has_checkpoint"], first["cursor"], first["items_processed"]) == (False, None, 0)
    assert first["accumulated"] is None
    rerun = next(e for e in invokes if e["retry_count"] == 1)
    assert rerun["has_checkpoint"] is True
    assert rerun["cursor"] == LAST_CHECKPOINT
    assert rerun["items_processed"] == LAST_CHECKPOINT
    assert rerun["accumulated"] == {"sum": sum(values()[:LAST_CHECKPOINT])}
    assert rerun["attempts"] == 1, "the rerun is the second attempt"


def test_checkpoint_record_keeps_its_history_and_survives_completion(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("checkpointed_sum")

    view = run_dynamic(app, "checkpointed_sum", context(tmp_path / "j", fail_at=FAIL_AT))

    record = task_steps(app, view.task_uuid)["sum_values"].checkpoint
    assert record is not None
    last = ITEMS - EVERY
    assert record["cursor"] == last
    assert record["items_processed"] == last
    assert record["accumulated_results"] == {"sum": sum(values()[:last])}
    assert [h["cursor"] for h in record["history"]] == list(range(EVERY, ITEMS, EVERY))
    assert record["history"][-1]["timestamp"] == record["timestamp"]


def test_permanent_failure_keeps_the_checkpoint_for_inspection(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    app = make_dynamic("checkpointed_sum")

    view = run_dynamic(
        app,
        "checkpointed_sum",
        context(tmp_path / "j", fail_at=FAIL_AT, fail_permanently=True),
    )

    step = view.steps["sum_values"]
    assert (step.state, step.attempts) == ("error", 1)
    assert view.state == "error"
    assert step.checkpoint is not None
    assert step.checkpoint["cursor"] == LAST_CHECKPOINT
    assert step.checkpoint["accumulated_results"] == {"sum": sum(values()[:LAST_CHECKPOINT])}


def test_an_oversized_checkpoint_fails_the_step_and_writes_nothing(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    """R4.2: checkpoints have a size limit (the result limit); one over it is refused before it
    is written and fails the step permanently, with a message that names the limit."""
    app = make_dynamic("checkpointed_sum", max_result_bytes=4000)

    view = run_dynamic(app, "checkpointed_sum", context(tmp_path / "j", checkpoint_padding=5000))

    step = view.steps["sum_values"]
    assert (step.state, step.attempts) == ("error", 1)
    assert step.checkpoint is None
    assert isinstance(step.error, dict)
    assert step.error["error_type"] == "checkpoint_error"
    assert step.error["retryable"] is False
    assert "over the limit of 4000" in step.error["message"]
