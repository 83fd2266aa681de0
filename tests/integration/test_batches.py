"""Batch processing end to end, on every backend (batch-and-decisions.md §2).

``csv_totals`` (class form: ``Batchable`` handlers) sums a CSV column through one worker per
range; ``range_totals`` (functional ``@batch_analyzer`` / ``@batch_worker``) sums item indexes.
Expected totals are computed here, directly from the data the test generated.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from tasker.runtime import Tasker, TaskView
from tests.fixtures.handlers.dynamic_handlers import read_journal
from tests.integration.conftest import MakeTasker, run_dynamic, task_edges, task_steps

ROWS = 10_000
BATCH = 500
WORKER = "sum_csv_batch"
METADATA = {"cursor_field": "row_number", "failure_strategy": "fail_fast"}


def write_csv(path: Path, rows: int) -> list[int]:
    """A CSV of ``rows`` rows (``row_number``, ``amount``); returns the amounts."""
    amounts = [(i * 7919) % 1009 - 300 for i in range(rows)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row_number", "amount"])
        writer.writerows([i, amount] for i, amount in enumerate(amounts))
    return amounts


def workers_of(view: TaskView, prefix: str) -> list[str]:
    return sorted(name for name in view.steps if name.startswith(prefix))


def worker_inputs(cursor: dict[str, object], *, no_op: bool) -> dict[str, object]:
    """What spec §2.2 step 3 says a csv_totals worker's inputs are."""
    return {
        "mode": "sum",
        "cursor": cursor,
        "batch_metadata": METADATA,
        "is_no_op": no_op,
        "__template_step_name": WORKER,
    }


def test_csv_of_10000_rows_runs_20_workers_whose_sums_add_up(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    amounts = write_csv(tmp_path / "data.csv", ROWS)
    journal = tmp_path / "journal.jsonl"
    app = make_dynamic("csv_totals")

    view = run_dynamic(
        app, "csv_totals", {"csv_path": str(tmp_path / "data.csv"), "journal": str(journal)}
    )

    assert view.state == "complete"
    names = [f"{WORKER}_{i:03d}" for i in range(1, ROWS // BATCH + 1)]
    assert workers_of(view, WORKER) == names
    assert set(view.steps) == {"analyze_csv", "total_csv", "publish_total", *names}
    assert {(s.state, s.attempts) for s in view.steps.values()} == {("complete", 1)}
    analyzer = view.steps["analyze_csv"].result
    assert analyzer["batch_processing_outcome"]["type"] == "create_batches"
    assert analyzer["total_items"] == ROWS
    rows = task_steps(app, view.task_uuid)
    seen_by_handler = {e["step"]: e for e in read_journal(journal) if e["event"] == "batch"}
    assert sorted(seen_by_handler) == names, "every worker ran exactly once"
    for i, name in enumerate(names):
        start, end = i * BATCH, (i + 1) * BATCH
        cursor = {
            "batch_id": f"{i + 1:03d}",
            "start_cursor": start,
            "end_cursor": end,
            "batch_size": BATCH,
        }
        assert rows[name].inputs == worker_inputs(cursor, no_op=False), name
        assert rows[name].template_step_name == WORKER
        assert seen_by_handler[name]["inputs"] == worker_inputs(cursor, no_op=False)
        assert seen_by_handler[name]["config"] == {"mode": "sum"}
        result = view.steps[name].result
        assert result["items_processed"] == BATCH
        assert result["last_cursor"] == end
        assert result["results"] == [{"batch_sum": sum(amounts[start:end])}], name
    assert view.steps["total_csv"].result == {
        "total": sum(amounts),
        "rows": ROWS,
        "worker_count": len(names),
        "scenario": "with_batches",
    }
    assert view.steps["publish_total"].result == {"published_total": sum(amounts)}
    assert task_edges(app, view.task_uuid) == {
        *((("analyze_csv", n, "batch_dependency")) for n in names),
        *(((n, "total_csv", "worker_to_convergence")) for n in names),
        ("total_csv", "publish_total", "provides"),
    }


def test_empty_csv_runs_one_no_op_worker_and_converges_on_zero(
    make_dynamic: MakeTasker, tmp_path: Path
) -> None:
    write_csv(tmp_path / "empty.csv", 0)
    journal = tmp_path / "journal.jsonl"
    app = make_dynamic("csv_totals")

    view = run_dynamic(
        app, "csv_totals", {"csv_path": str(tmp_path / "empty.csv"), "journal": str(journal)}
    )

    assert view.state == "complete"
    placeholder = f"{WORKER}_000"
    assert set(view.steps) == {"analyze_csv", placeholder, "total_csv", "publish_total"}
    assert {(s.state, s.attempts) for s in view.steps.values()} == {("complete", 1)}
    assert view.steps["analyze_csv"].result["batch_processing_outcome"] == {"type": "no_batches"}
    cursor = {"batch_id": "000", "start_cursor": 0, "end_cursor": 0, "batch_size": 0}
    assert task_steps(app, view.task_uuid)[placeholder].inputs == worker_inputs(cursor, no_op=True)
    ran = [e["step"] for e in read_journal(journal) if e["event"] == "batch"]
    assert ran == [placeholder], "the placeholder is dispatched like any worker, once"
    assert view.steps[placeholder].result["no_op"] is True
    assert view.steps["total_csv"].result == {
        "total": 0,
        "rows": 0,
        "worker_count": 0,
        "scenario": "no_batches",
    }
    assert view.steps["publish_total"].result == {"published_total": 0}
    assert task_edges(app, view.task_uuid) == {
        ("analyze_csv", placeholder, "batch_dependency"),
        (placeholder, "total_csv", "worker_to_convergence"),
        ("total_csv", "publish_total", "provides"),
    }


def wait_settled(app: Tasker, task_uuid: str, timeout_s: float) -> str:
    """Poll only the task's state: a full ``TaskView`` of 1,000 steps per wake-up is too costly."""
    deadline = time.monotonic() + timeout_s
    while True:
        with app.store.read() as tx:
            task = tx.get_task(task_uuid)
        assert task is not None
        if task.state.value in ("complete", "error", "blocked_by_failures", "cancelled"):
            return task.state.value
        if time.monotonic() > deadline:
            return task.state.value
        time.sleep(0.2)


def test_one_task_with_1000_functional_batch_workers_completes(make_dynamic: MakeTasker) -> None:
    items, size = 100_000, 100
    app = make_dynamic("range_totals", maintenance_interval_s=0.5)

    task_uuid = app.create_task(
        "range_totals", namespace="dynamic", context={"total_items": items, "batch_size": size}
    )
    state = wait_settled(app, task_uuid, 90.0)

    assert state == "complete"
    rows = task_steps(app, task_uuid)
    workers = {name: row for name, row in rows.items() if name.startswith("sum_range_")}
    assert set(workers) == {f"sum_range_{i:03d}" for i in range(1, items // size + 1)}
    assert len(rows) == len(workers) + 2
    assert {(row.state.value, row.attempts) for row in rows.values()} == {("complete", 1)}
    ranges = sorted((row.inputs or {})["cursor"]["start_cursor"] for row in workers.values())
    assert ranges == list(range(0, items, size))
    total = (rows["total_range"].results or {})["result"]
    assert total == {
        "scenario": "with_batches",
        "total": items * (items - 1) // 2,
        "items": items,
        "workers": items // size,
    }


def test_functional_analyzer_with_no_items_converges_on_no_batches(
    make_dynamic: MakeTasker,
) -> None:
    app = make_dynamic("range_totals")

    view = run_dynamic(app, "range_totals", {"total_items": 0, "batch_size": 100})

    assert view.state == "complete"
    assert set(view.steps) == {"plan_ranges", "sum_range_000", "total_range"}
    assert view.steps["sum_range_000"].result == {"no_op": True, "items_processed": 0}
    assert view.steps["total_range"].result == {"scenario": "no_batches", "total": 0, "workers": 0}
