"""The examples of docs/handlers.md run as written and do what the page says.

Every fenced block whose first line is ``# file: NAME`` is written to a temporary directory;
the templates and handler modules found there are run on a SQLite store.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasker.config import Settings
from tasker.runtime import Tasker, TaskView

DOC = Path(__file__).resolve().parents[2] / "docs" / "handlers.md"
BLOCK = re.compile(r"```(?:python|yaml)\n# file: (?P<name>\S+)\n(?P<body>.*?)```", re.DOTALL)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("docs_examples")
    blocks = {m["name"]: m["body"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))}
    assert set(blocks) == {
        "approval.yaml",
        "approval_handlers.py",
        "totals.yaml",
        "totals_handlers.py",
        "importer.yaml",
        "importer_handlers.py",
    }
    for name, body in blocks.items():
        (folder / name).write_text(body, encoding="utf-8")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for module in ("approval_handlers", "totals_handlers", "importer_handlers"):
        sys.modules.pop(module, None)


def run(folder: Path, example: str, context: dict[str, Any], tmp_path: Path) -> TaskView:
    settings = Settings.load(
        {"env": "test", "poll_interval_s": 0.05, "maintenance_interval_s": 0.02}, environ={}
    )
    with Tasker(
        f"sqlite:///{tmp_path / 'docs.db'}",
        settings=settings,
        templates=[folder / f"{example}.yaml"],
        handlers=[f"{example}_handlers"],
    ) as app:
        return app.run(example, namespace="docs", context=context, timeout_s=20)


def test_a_small_amount_is_approved_automatically(examples: Path, tmp_path: Path) -> None:
    view = run(examples, "approval", {"amount": 250}, tmp_path)
    assert view.state == "complete"
    assert set(view.steps) == {"receive", "route", "auto_approve", "finalize"}
    assert view.steps["finalize"].result == {"approved_by": ["auto_approve"]}


def test_a_large_amount_needs_manager_and_finance(examples: Path, tmp_path: Path) -> None:
    view = run(examples, "approval", {"amount": 5000}, tmp_path)
    assert view.state == "complete"
    assert "auto_approve" not in view.steps
    assert view.steps["finalize"].result == {"approved_by": ["manager_approval", "finance_review"]}


def test_batches_add_up_to_the_direct_sum(examples: Path, tmp_path: Path) -> None:
    view = run(examples, "totals", {"values": list(range(250))}, tmp_path)
    assert view.state == "complete"
    assert sorted(n for n in view.steps if n.startswith("sum_rows_")) == [
        "sum_rows_001",
        "sum_rows_002",
        "sum_rows_003",
    ]
    assert view.steps["total"].result["total"] == 31125 == sum(range(250))


def test_no_rows_means_one_no_op_worker_and_a_zero_total(examples: Path, tmp_path: Path) -> None:
    view = run(examples, "totals", {"values": []}, tmp_path)
    assert view.state == "complete"
    assert sorted(n for n in view.steps if n.startswith("sum_rows_")) == ["sum_rows_000"]
    assert view.steps["total"].result["total"] == 0


def test_the_importer_resumes_from_its_last_checkpoint(examples: Path, tmp_path: Path) -> None:
    if "importer_handlers" in sys.modules:
        sys.modules["importer_handlers"].SEEN.clear()
    items = list(range(600))
    view = run(examples, "importer", {"items": items, "fail_at": 317}, tmp_path)
    seen: list[int] = sys.modules["importer_handlers"].SEEN
    assert view.state == "complete"
    assert view.steps["import_items"].attempts == 2
    assert view.steps["import_items"].result == {"sum": sum(items)}
    twice = sorted({i for i in seen if seen.count(i) == 2})
    assert twice == list(range(300, 317))
    assert sorted(set(seen)) == items
    assert len(seen) == 600 + 17
