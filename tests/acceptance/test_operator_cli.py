"""The operator story through the installed CLI, in subprocesses, as an operator would type it.

A ``tasker serve`` process runs the API and the workers. A task of ``ops/fragile`` fails
permanently, gives up and opens a DLQ entry; the operator finds it (``tasker dlq list``),
completes the failed step by hand (``tasker step resolve ... complete_manually``), the task
completes, and the operator closes the DLQ entry. Commands alternate between the server
(``--url``) and the database (``--database-url``): both must tell the same story.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_cli import REPO, tasker_command

TEMPLATES = REPO / "tests" / "fixtures" / "templates" / "operator"
HANDLERS = "tests.fixtures.handlers.operator_handlers"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMEOUT_S = 60
WAIT_S = 30


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tasker_command(), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def run_json(cwd: Path, *args: str) -> Any:
    result = run(cwd, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path, store_url: str) -> Iterator[tuple[str, str]]:
    """``tasker serve`` on a free loopback port; yields (server URL, database URL)."""
    port = _free_port()
    env = _env() | {"TASKER_POLL_INTERVAL_S": "0.05", "TASKER_MAINTENANCE_INTERVAL_S": "0.05"}
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            *tasker_command(),
            "serve",
            "--port",
            str(port),
            "--database-url",
            store_url,
            "--templates",
            str(TEMPLATES),
            "--handlers",
            HANDLERS,
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            log.close()
            pytest.fail(f"tasker serve did not come up: {log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    try:
        yield url, store_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        log.close()
        assert code == 0, f"tasker serve ended with {code}: {log_path.read_text()[-3000:]}"


def wait_status(cwd: Path, task_uuid: str, status: str, *where: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        task: dict[str, Any] = run_json(cwd, "task", "get", task_uuid, *where)
        if task["status"] == status or time.monotonic() > deadline:
            assert task["status"] == status, task
            return task
        time.sleep(0.2)


def test_operator_resolves_a_dlq_task_through_the_cli(
    tmp_path: Path, served: tuple[str, str]
) -> None:
    url, database = served
    api, db = ("--url", url), ("--database-url", database)

    created = run(
        tmp_path,
        "task",
        "create",
        "fragile",
        "--namespace",
        "ops",
        "--version",
        "1.0.0",
        "--context",
        '{"order_id": 42}',
        *db,
    )
    assert created.returncode == 0, created.stderr
    task_uuid = created.stdout.strip()
    assert UUID.match(task_uuid), created.stdout  # only the uuid, so scripts can capture it

    duplicate = run(
        tmp_path,
        "task",
        "create",
        "fragile",
        "--namespace",
        "ops",
        "--context",
        '{"order_id": 42}',
        *api,
    )
    assert duplicate.returncode == 1
    assert task_uuid in duplicate.stderr
    assert duplicate.stdout == ""

    wait_status(tmp_path, task_uuid, "error", *db)
    entries = run_json(tmp_path, "dlq", "list", *db)
    (entry,) = [e for e in entries if e["task_uuid"] == task_uuid]
    assert (entry["dlq_reason"], entry["resolution_status"]) == ("max_retries_exceeded", "pending")
    assert run_json(tmp_path, "dlq", "list", *api) == entries  # same document both ways

    steps = run_json(tmp_path, "step", "list", task_uuid, *api)
    fetch = next(s for s in steps if s["name"] == "fetch")
    assert fetch["current_state"] == "error"
    assert "supplier refused order 42" in fetch["results"]["error"]["message"]

    resolved = run(
        tmp_path,
        "step",
        "resolve",
        task_uuid,
        fetch["step_uuid"],
        "complete_manually",
        "--result",
        '{"tracking": "TRK-42"}',
        "--reason",
        "confirmed by phone",
        "--by",
        "ann",
        *db,
    )
    assert resolved.returncode == 0, resolved.stderr
    assert "complete" in resolved.stdout

    wait_status(tmp_path, task_uuid, "complete", *api)
    ship = run_json(
        tmp_path,
        "step",
        "get",
        task_uuid,
        next(s for s in steps if s["name"] == "ship")["step_uuid"],
        *db,
    )
    assert ship["results"]["result"] == {"shipped": "TRK-42"}

    updated = run(
        tmp_path,
        "dlq",
        "update",
        entry["dlq_entry_uuid"],
        "--status",
        "manually_resolved",
        "--notes",
        "step completed by hand",
        "--by",
        "ann",
        *api,
    )
    assert updated.returncode == 0, updated.stderr
    closed = run_json(tmp_path, "dlq", "get", task_uuid, *db)
    assert (closed["resolution_status"], closed["resolved_by"]) == ("manually_resolved", "ann")
    (stats,) = run_json(tmp_path, "dlq", "stats", *api)
    assert stats["manually_resolved"] == 1


def test_reset_for_retry_runs_the_step_again(tmp_path: Path, served: tuple[str, str]) -> None:
    url, database = served
    api, db = ("--url", url), ("--database-url", database)
    task_uuid = run(
        tmp_path,
        "task",
        "create",
        "fragile",
        "--namespace",
        "ops",
        "--context",
        '{"order_id": 7}',
        *api,
    ).stdout.strip()
    assert UUID.match(task_uuid)
    wait_status(tmp_path, task_uuid, "error", *api)
    fetch = next(
        s for s in run_json(tmp_path, "step", "list", task_uuid, *db) if s["name"] == "fetch"
    )
    reset = run(
        tmp_path,
        "step",
        "resolve",
        task_uuid,
        fetch["step_uuid"],
        "--action",
        "reset_for_retry",
        "--reason",
        "supplier is back",
        *api,
    )
    assert reset.returncode == 0, reset.stderr
    deadline = time.monotonic() + WAIT_S
    while len(run_json(tmp_path, "step", "audit", task_uuid, fetch["step_uuid"], *db)) < 2:
        assert time.monotonic() < deadline, "the reset step never ran again"
        time.sleep(0.2)
    wait_status(tmp_path, task_uuid, "error", *db)  # it failed again: the supplier still refuses
    again = run(
        tmp_path, "step", "resolve", task_uuid, str(fetch["step_uuid"]), "complete_manually", *db
    )
    assert again.returncode == 2  # usage: complete_manually needs --result
    assert "--result" in again.stderr


def test_errors_are_one_line_and_exit_1(tmp_path: Path, served: tuple[str, str]) -> None:
    url, database = served
    missing = "00000000-0000-0000-0000-000000000000"
    for where in (("--url", url), ("--database-url", database)):
        result = run(tmp_path, "task", "get", missing, *where)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ")
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
        unknown = run(tmp_path, "task", "create", "nope", "--namespace", "ops", *where)
        assert unknown.returncode == 1
        assert "not found" in unknown.stderr.lower()
    assert run(tmp_path, "health", "--url", url).returncode == 0
    assert run(tmp_path, "health", "--database-url", database).returncode == 0
    unreachable = run(tmp_path, "health", "--url", f"http://127.0.0.1:{_free_port()}")
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr
    templates = run_json(tmp_path, "template", "list", "--url", url)
    assert {t["name"] for t in templates["templates"]} == {"fragile", "pipeline"}
    assert (
        run_json(
            tmp_path, "template", "get", "ops", "pipeline", "1.0.0", "--database-url", database
        )["steps"][0]["name"]
        == "double"
    )
    validated = run(tmp_path, "template", "validate", str(TEMPLATES))
    assert validated.returncode == 0
    assert "ok: ops/fragile@1.0.0" in validated.stdout


def test_analytics_tell_the_same_story_from_the_server_and_the_database(
    tmp_path: Path, served: tuple[str, str]
) -> None:
    url, database = served
    api, db = ("--url", url), ("--database-url", database)
    done = run(tmp_path, "task", "create", "pipeline", "--namespace", "ops", *api).stdout.strip()
    failed = run(
        tmp_path, "task", "create", "fragile", "--namespace", "ops", "--context", "{}", *db
    ).stdout.strip()
    wait_status(tmp_path, done, "complete", *api)
    wait_status(tmp_path, failed, "error", *api)

    counts = ("total_tasks", "active_tasks", "completed_tasks", "failed_tasks", "steps_per_hour")
    for where in (api, db):
        metrics = run_json(tmp_path, "analytics", "performance", "--hours", "2", *where)
        assert [metrics[k] for k in counts] == [2, 0, 1, 1, 1.5]  # 3 step runs in 2 h
    table = run(tmp_path, "analytics", "performance", *db)
    assert table.returncode == 0, table.stderr
    assert "completion_rate" in table.stdout

    by_server = run_json(tmp_path, "analytics", "bottlenecks", "--min-executions", "1", *api)
    by_database = run_json(tmp_path, "analytics", "bottlenecks", "--min-executions", "1", *db)
    for analysis in (by_server, by_database):
        assert len(analysis["slow_steps"]) == 3
        assert {t["task_name"] for t in analysis["slow_tasks"]} == {"pipeline", "fragile"}
    assert by_server["recommendations"] == by_database["recommendations"]
    table = run(tmp_path, "analytics", "bottlenecks", "--min-executions", "1", *api)
    assert table.returncode == 0, table.stderr
    assert "slowest steps" in table.stdout
    assert "Step 'fetch' of ops/fragile@1.0.0 failed 1 of 1 executions" in table.stdout
    refused = run(tmp_path, "analytics", "performance", "--hours", "0", *api)
    assert refused.returncode == 2  # click's usage error: out of range
