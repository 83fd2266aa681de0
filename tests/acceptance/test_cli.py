"""The installed ``tasker`` command, run in a subprocess from a scratch directory.

Handlers come either from the test fixtures (``PYTHONPATH`` = the repository) or from a module
written next to the template in the working directory, as a user would do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_TEMPLATES = REPO / "tests" / "fixtures" / "templates" / "engine"
ENGINE_HANDLERS = "tests.fixtures.handlers.engine_handlers"
TIMEOUT_S = 60


def tasker_command() -> list[str]:
    """The console script installed next to this interpreter (the venv's ``tasker``)."""
    script = Path(sys.executable).with_name("tasker")
    if script.exists():
        return [str(script)]
    found = shutil.which("tasker")
    if found is None:
        pytest.fail("the tasker console script is not installed (pip install -e '.[dev]')")
    return [found]


def tasker(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tasker *args`` in ``cwd`` with a clean ``TASKER_*`` environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [*tasker_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasker.db'}"


CHECKOUT_TEMPLATE = """\
name: checkout
namespace_name: shop
version: "1.0.0"
steps:
  - name: reserve
    handler: {callable: shop_handlers.Reserve}
  - name: charge
    dependencies: [reserve]
    handler: {callable: shop_handlers.Charge}
  - name: ship
    dependencies: [charge]
    handler: {callable: shop_handlers.Ship}
"""

CHECKOUT_HANDLERS = """\
from tasker.errors import PermanentError
from tasker.worker.handlers import StepHandler


class Reserve(StepHandler):
    handler_name = "shop_reserve"

    def call(self, context):
        return self.success({"reserved": context.get_input("items")})


class Charge(StepHandler):
    handler_name = "shop_charge"

    def call(self, context):
        if context.get_input("card") == "declined":
            raise PermanentError("card declined by the bank")
        return self.success({"charged": 10 * context.get_dependency_result("reserve")["reserved"]})


class Ship(StepHandler):
    handler_name = "shop_ship"

    def call(self, context):
        return self.success({"shipped": True})
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A working directory holding checkout.yaml and its handlers module, shop_handlers.py."""
    (tmp_path / "checkout.yaml").write_text(CHECKOUT_TEMPLATE)
    (tmp_path / "shop_handlers.py").write_text(CHECKOUT_HANDLERS)
    return tmp_path


def run_json(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = tasker(cwd, "run", *args, "--json", "--database-url", db_url(cwd), "--timeout", "30")
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON: {done.stdout!r}\nstderr: {done.stderr}")
    return done, document


def test_run_json_of_a_passing_workflow_exits_0_with_every_result(tmp_path: Path) -> None:
    done, document = run_json(
        tmp_path,
        str(ENGINE_TEMPLATES / "linear_chain.yaml"),
        "--handlers",
        ENGINE_HANDLERS,
        "--context",
        '{"seed": 2}',
    )

    assert done.returncode == 0, done.stderr
    assert document["state"] == "complete"
    assert len(document["task_uuid"]) == 36
    assert document["steps"] == {
        name: {"state": "complete", "attempts": 1, "result": {"value": value}, "error": None}
        for name, value in [("first", 4), ("second", 16), ("third", 256), ("fourth", 65536)]
    }


def test_run_json_with_handlers_from_the_working_directory(shop: Path) -> None:
    done, document = run_json(
        shop, "checkout.yaml", "--handlers", "shop_handlers", "--context", '{"items": 3}'
    )

    assert done.returncode == 0, done.stderr
    assert document["state"] == "complete"
    assert document["steps"]["charge"]["result"] == {"charged": 30}


def test_run_json_of_a_failing_workflow_exits_1_with_the_error(shop: Path) -> None:
    done, document = run_json(
        shop,
        "checkout.yaml",
        "--handlers",
        "shop_handlers",
        "--context",
        '{"items": 3, "card": "declined"}',
    )

    assert done.returncode == 1
    assert document["state"] == "error"
    steps = document["steps"]
    assert steps["reserve"] == {
        "state": "complete",
        "attempts": 1,
        "result": {"reserved": 3},
        "error": None,
    }
    charge = steps["charge"]
    assert (charge["state"], charge["attempts"], charge["result"]) == ("error", 1, None)
    assert charge["error"]["message"] == "card declined by the bank"
    assert charge["error"]["error_type"] == "permanent_error"
    assert charge["error"]["retryable"] is False
    assert (steps["ship"]["state"], steps["ship"]["attempts"]) == ("pending", 0)
    assert "Traceback" not in done.stderr


def test_run_with_a_non_json_context_prints_one_error_line(shop: Path) -> None:
    done = tasker(
        shop, "run", "checkout.yaml", "--handlers", "shop_handlers", "--context", "{items: 3"
    )

    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: --context is not valid JSON")
    assert not (shop / "tasker.db").exists()


def test_run_of_a_missing_template_file_is_a_usage_error(tmp_path: Path) -> None:
    done = tasker(tmp_path, "run", "nowhere.yaml")

    assert done.returncode == 2
    assert "nowhere.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_accepts_the_engine_templates(tmp_path: Path) -> None:
    done = tasker(tmp_path, "validate", str(ENGINE_TEMPLATES))

    assert done.returncode == 0, done.stderr
    expected = sorted(path.stem for path in ENGINE_TEMPLATES.glob("*.yaml"))
    names = sorted(line.split("/")[1].split("@")[0] for line in done.stdout.splitlines())
    assert names == expected
    assert all(line.startswith("ok: engine/") for line in done.stdout.splitlines())


def test_validate_rejects_a_bad_template_with_one_line_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            name: bad
            namespace_name: shop
            version: "1.0.0"
            steps:
              - name: a
                dependencies: [ghost]
                handler: {callable: h}
            """
        )
    )

    done = tasker(tmp_path, "validate", "bad.yaml")

    assert done.returncode == 1
    assert done.stdout == ""
    problems = [line for line in done.stderr.splitlines() if " WARNING " not in line]
    assert len(problems) == 1
    assert problems[0].startswith("bad.yaml:")
    assert '"ghost"' in problems[0]
    assert "Traceback" not in done.stderr


def test_demo_fulfils_every_order(tmp_path: Path) -> None:
    done = tasker(tmp_path, "demo", "--database-url", db_url(tmp_path))

    assert done.returncode == 0, done.stderr
    assert "all orders fulfilled" in done.stdout
    assert (tmp_path / "tasker.db").exists()  # the database named on the command line
