"""docs/states.md must list exactly the transitions the code allows."""

from __future__ import annotations

from pathlib import Path

from tasker.domain.states import STEP_TRANSITIONS, TASK_TRANSITIONS

DOC = Path(__file__).parents[2] / "docs" / "states.md"


def _table(section: str) -> set[tuple[str, str, str]]:
    text = DOC.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("from", "---"):
            rows.add((cells[0], cells[1], cells[2]))
    return rows


def test_task_table_in_docs_matches_code() -> None:
    code = {(f.value, e.value, t.value) for (f, e), t in TASK_TRANSITIONS.items()}
    assert _table("Task transitions") == code


def test_step_table_in_docs_matches_code() -> None:
    code = {(f.value, e.value, t.value) for (f, e), t in STEP_TRANSITIONS.items()}
    assert _table("Step transitions") == code
