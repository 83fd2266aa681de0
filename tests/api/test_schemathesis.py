"""Property-based requests generated from our own OpenAPI document (schemathesis), bounded.

Every operation gets a few generated requests, valid and invalid; none may answer 5xx, and every
answer must match the documented status codes, content type and response schema.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import MakeServer, Server

ADMIN_KEY = "schemathesis-admin-key-0123456789"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def schemathesis_command() -> list[str]:
    script = Path(sys.executable).with_name("schemathesis")
    if script.exists():
        return [str(script)]
    found = shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed (pip install -e '.[dev]')")
    return [found]


def run_schemathesis(server: Server, cwd: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    args = [
        *schemathesis_command(),
        "run",
        f"{server.url}/api-docs/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "5",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20240101",
        "--no-color",
    ]
    for header in headers:
        args += ["--header", header]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _generated(output: str) -> int:
    match = re.search(r"(\d+) generated", output)
    return int(match.group(1)) if match else 0


def test_generated_requests_never_get_a_server_error(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server()
    result = run_schemathesis(server, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert _generated(result.stdout) > 200, result.stdout[-2000:]


def test_generated_requests_with_auth_on(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(auth_enabled="true", api_key=ADMIN_KEY)
    result = run_schemathesis(server, tmp_path, f"X-API-Key: {ADMIN_KEY}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert _generated(result.stdout) > 200, result.stdout[-2000:]
