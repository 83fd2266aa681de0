"""Bad input gets one clear error and writes nothing (reliability.md R7, execution.md §2).

Python API cases run on every backend against a store that already holds a task, and compare
every table's row count before and after. CLI cases call the ``tasker`` entry point in-process
(tests/acceptance runs the installed command) on a SQLite file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasker.cli.main import main
from tasker.config import Settings
from tasker.errors import InvalidContext, TaskerError, TemplateNotFound
from tasker.runtime import Tasker
from tasker.store import open_store
from tests.fixtures.handlers.engine_handlers import Recorder
from tests.integration.conftest import FAST, HANDLERS, MakeTasker, table_counts, template_path

# -- the Python API ------------------------------------------------------------------------------


@pytest.fixture
def app(make_tasker: MakeTasker, recorder: Recorder) -> Tasker:
    """An engine (workers not started) whose store already holds one task."""
    app = make_tasker("linear_chain", "schema_checked", "caller_keyed", start=False)
    app.create_task("linear_chain", namespace="engine", context=recorder.context(seed=2))
    return app


def assert_rejected(
    app: Tasker,
    error: type[TaskerError],
    message: str,
    name: str = "linear_chain",
    **request: Any,
) -> str:
    """Create a task that must fail with ``error`` whose one-line message contains
    ``message``; check that no table changed. Returns the message."""
    before = table_counts(app)
    request.setdefault("namespace", "engine")
    with pytest.raises(error) as raised:
        app.create_task(name, **request)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text
    assert table_counts(app) == before
    return text


@pytest.mark.parametrize(
    ("request_", "shown"),
    [
        ({"name": "no_such_template"}, "engine/no_such_template@1.0.0"),
        ({"namespace": "elsewhere"}, "elsewhere/linear_chain@1.0.0"),
        ({"version": "9.9.9"}, "engine/linear_chain@9.9.9"),
    ],
    ids=["name", "namespace", "version"],
)
def test_unknown_template_is_rejected(app: Tasker, request_: dict[str, str], shown: str) -> None:
    text = assert_rejected(app, TemplateNotFound, shown, **request_)

    assert text.startswith("template not found")


@pytest.mark.parametrize(
    ("context", "kind"),
    [([1, 2], "list"), ("order 7", "str"), (42, "int"), (4.5, "float"), (True, "bool")],
)
def test_context_that_is_not_an_object_is_rejected(app: Tasker, context: Any, kind: str) -> None:
    assert_rejected(
        app, InvalidContext, f"context must be a JSON object, got {kind}", context=context
    )


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"level": value}
    return value


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"blobs": ["x" * 9000] * 120},  # every string and list is in bounds; the total is not
            "context is 1080",
        ),
        (nested(11), "nested deeper than 10"),
        ({"note": "x" * 10_001}, "context at $.note is a string longer than 10000 characters"),
        ({"k" * 10_001: 1}, "has a key longer than 10000 characters"),
        ({f"k{i}": i for i in range(1001)}, "context at $ has more than 1000 keys"),
        ({"ids": list(range(1001))}, "context at $.ids has more than 1000 items"),
        ({"when": {1, 2}}, "context at $.when is not JSON (a set)"),
        ({"ratio": float("nan")}, "context is not valid JSON"),
    ],
    ids=[
        "oversized",
        "too_deep",
        "long_string",
        "long_key",
        "too_many_keys",
        "too_many_items",
        "not_json",
        "nan",
    ],
)
def test_context_over_a_limit_is_rejected(app: Tasker, context: Any, message: str) -> None:
    assert_rejected(app, InvalidContext, message, context=context)


def test_context_at_the_limits_is_accepted(app: Tasker, recorder: Recorder) -> None:
    context = {**recorder.context(seed=2), "deep": nested(9), "note": "x" * 10_000}

    task_uuid = app.create_task("linear_chain", namespace="engine", context=context)

    assert app.get_task(task_uuid).context == context


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"email": "a@b.c"}, "at $: 'order_id' is a required property"),
        ({"order_id": "seven"}, "at $.order_id: 'seven' is not of type 'integer'"),
        ({"order_id": 0}, "at $.order_id: 0 is less than the minimum of 1"),
    ],
    ids=["missing", "wrong_type", "out_of_range"],
)
def test_context_violating_the_input_schema_is_rejected(
    app: Tasker, context: dict[str, Any], message: str
) -> None:
    text = assert_rejected(app, InvalidContext, message, name="schema_checked", context=context)

    assert "input_schema of engine/schema_checked@1.0.0" in text


def test_context_matching_the_input_schema_is_accepted(app: Tasker) -> None:
    task_uuid = app.create_task("schema_checked", namespace="engine", context={"order_id": 7})

    assert app.get_task(task_uuid).context == {"order_id": 7}


def test_caller_provided_identity_without_a_key_is_rejected(app: Tasker) -> None:
    assert_rejected(
        app,
        InvalidContext,
        "idempotency_key is required when named task uses CallerProvided identity strategy",
        name="caller_keyed",
        context={"order_id": 7},
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"tags": ("ok", 7)}, "tags must be a list of strings"),
        ({"tags": ("x" * 10_001,)}, "tags at $[0] is a string longer than 10000 characters"),
        ({"priority": 101}, "priority must be between -100 and 100, got 101"),
        ({"priority": -101}, "priority must be between -100 and 100, got -101"),
    ],
    ids=["tag_not_string", "tag_too_long", "priority_high", "priority_low"],
)
def test_bad_tags_or_priority_are_rejected(
    app: Tasker, recorder: Recorder, request_: dict[str, Any], message: str
) -> None:
    assert_rejected(app, InvalidContext, message, context=recorder.context(seed=9), **request_)


# -- the CLI -------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``tasker *argv`` in-process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store that already holds the linear_chain template and one finished task."""
    url = f"sqlite:///{tmp_path}/cli.db"
    settings = Settings.load(FAST, environ={})
    templates = [template_path("linear_chain")]
    with Tasker(url, settings=settings, templates=templates, handlers=[HANDLERS]) as app:
        view = app.run("linear_chain", namespace="engine", context={"seed": 2}, timeout_s=15)
    assert view.state == "complete"  # nothing left for the CLI's workers to pick up
    return url


def counts_at(url: str) -> dict[str, int]:
    store = open_store(url)
    try:
        with store.read() as tx:
            return tx.table_counts()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("{not json", "error: --context is not valid JSON: "),
        ("[1, 2]", "error: context must be a JSON object, got list"),
        ('"order 7"', "error: context must be a JSON object, got str"),
        ("42", "error: context must be a JSON object, got int"),
        ('{"seed": 2, "deep": ' + "[" * 11 + "]" * 11 + "}", "nested deeper than 10"),
    ],
    ids=["not_json", "list", "string", "number", "too_deep"],
)
def test_cli_run_with_a_bad_context_fails_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, context: str, message: str
) -> None:
    before = counts_at(sqlite_url)

    code, out, err = cli(
        capsys,
        "run",
        str(template_path("linear_chain")),
        "--handlers",
        HANDLERS,
        "--database-url",
        sqlite_url,
        "--context",
        context,
    )

    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ")
    assert message in err
    assert counts_at(sqlite_url) == before


def test_cli_run_with_a_bad_context_does_not_register_the_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"

    code, _, err = cli(
        capsys,
        "run",
        str(template_path("linear_chain")),
        "--handlers",
        HANDLERS,
        "--database-url",
        url,
        "--context",
        "[1, 2]",
    )

    assert code == 1
    assert "context must be a JSON object" in err
    db = tmp_path / "fresh.db"
    assert not db.exists() or set(counts_at(url).values()) == {0}


# Each invalid template: its text, and what its single problem line must say.
INVALID_TEMPLATES = {
    "yaml_syntax": (
        'name: broken\nnamespace_name: ns\nversion: "1.0.0"\n'
        "steps: [{name: a, handler: {callable: h}\n",
        "invalid YAML",
    ),
    "missing_field": (
        'namespace_name: ns\nversion: "1.0.0"\nsteps:\n  - name: a\n    handler: {callable: h}\n',
        "name: required field is missing",
    ),
    "unknown_step_type": (
        'name: t\nnamespace_name: ns\nversion: "1.0.0"\nsteps:\n'
        "  - name: a\n    type: magic\n    handler: {callable: h}\n",
        '"a".type: must be one of standard, decision',
    ),
    "undefined_dependency": (
        'name: t\nnamespace_name: ns\nversion: "1.0.0"\nsteps:\n'
        "  - name: a\n    dependencies: [ghost]\n    handler: {callable: h}\n",
        'depends on "ghost", which this template does not define',
    ),
    "cycle": (
        'name: t\nnamespace_name: ns\nversion: "1.0.0"\nsteps:\n'
        "  - name: a\n    dependencies: [c]\n    handler: {callable: h}\n"
        "  - name: b\n    dependencies: [a]\n    handler: {callable: h}\n"
        "  - name: c\n    dependencies: [b]\n    handler: {callable: h}\n",
        "dependency cycle: a -> c -> b -> a",
    ),
    "duplicate_step": (
        'name: t\nnamespace_name: ns\nversion: "1.0.0"\nsteps:\n'
        "  - name: a\n    handler: {callable: h}\n"
        "  - name: b\n    dependencies: [a]\n    handler: {callable: h}\n"
        "  - name: a\n    handler: {callable: h}\n",
        'duplicate step name "a"',
    ),
    "bad_retry": (
        'name: t\nnamespace_name: ns\nversion: "1.0.0"\nsteps:\n'
        "  - name: a\n    handler: {callable: h}\n    retry: {max_attempts: -1}\n",
        "retry.max_attempts: must be between 0 and 1000, got -1",
    ),
    "bad_version": (
        "name: t\nnamespace_name: ns\nversion: 1.0\nsteps:\n"
        "  - name: a\n    handler: {callable: h}\n",
        'version must be a string like "1.0.0"',
    ),
}


@pytest.fixture(params=sorted(INVALID_TEMPLATES))
def invalid_template(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """An invalid template file, and what the error line must say."""
    text, message = INVALID_TEMPLATES[request.param]
    path = tmp_path / f"{request.param}.yaml"
    path.write_text(text)
    return path, message


def test_cli_validate_reports_one_line_naming_the_file(
    capsys: pytest.CaptureFixture[str], invalid_template: tuple[Path, str]
) -> None:
    path, message = invalid_template

    code, out, err = cli(capsys, "validate", str(path))

    assert code == 1
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"{path}:")
    assert message in line
    assert "Traceback" not in err


def test_cli_run_refuses_an_invalid_template_before_touching_the_database(
    capsys: pytest.CaptureFixture[str], invalid_template: tuple[Path, str], sqlite_url: str
) -> None:
    path, message = invalid_template
    before = counts_at(sqlite_url)

    code, out, err = cli(
        capsys, "run", str(path), "--handlers", HANDLERS, "--database-url", sqlite_url
    )

    assert code == 1
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"error: {path}:")
    assert message in line
    assert "Traceback" not in err
    assert counts_at(sqlite_url) == before


def test_cli_validate_reports_every_problem_of_every_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    two_problems = tmp_path / "two_problems.yaml"
    two_problems.write_text(
        'name: t\nnamespace_name: ns\nversion: "1.0"\nsteps:\n'
        "  - name: a\n    handler: {callable: h}\n"
        "  - name: a\n    dependencies: [a]\n    handler: {callable: h}\n"
    )
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text(INVALID_TEMPLATES["cycle"][0])
    good = template_path("linear_chain")

    code, _, err = cli(capsys, "validate", str(two_problems), str(good), str(cycle))

    lines = err.splitlines()
    assert code == 1
    assert sum(line.startswith(f"{two_problems}:") for line in lines) >= 2
    assert sum(line.startswith(f"{cycle}:") for line in lines) == 1
    assert not any(str(good) in line for line in lines)
    assert "Traceback" not in err
