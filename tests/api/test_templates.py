"""Templates: list, detail, validate (rest-api.md §3, §5)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server, assert_envelope


def test_list_counts_templates_per_namespace(http: httpx.Client) -> None:
    body = http.get("/v1/templates").json()
    assert body["total_count"] == 2
    assert body["namespaces"] == [{"name": "ops", "description": None, "template_count": 2}]
    assert [(t["name"], t["step_count"]) for t in body["templates"]] == [
        ("fragile", 2),
        ("pipeline", 2),
    ]
    assert http.get("/v1/templates", params={"namespace": "other"}).json()["total_count"] == 0


def test_detail_shows_configuration_and_step_defaults(http: httpx.Client) -> None:
    body = http.get("/v1/templates/ops/fragile/1.0.0").json()
    assert (body["name"], body["namespace"], body["version"]) == ("fragile", "ops", "1.0.0")
    assert body["configuration"]["namespace_name"] == "ops"
    fetch = body["steps"][0]
    assert (fetch["name"], fetch["default_retryable"], fetch["default_max_attempts"]) == (
        "fetch",
        False,
        1,
    )


def test_unknown_namespace_and_template_are_404_with_the_original_messages(
    http: httpx.Client,
) -> None:
    error = assert_envelope(http.get("/v1/templates/nope/x/1"), 404, "NOT_FOUND")
    assert error["message"] == "Namespace not found: nope"
    error = assert_envelope(http.get("/v1/templates/ops/x/1"), 404, "NOT_FOUND")
    assert error["message"] == "Template not found: ops/x/1"


def test_validate_reports_steps_without_a_handler(http: httpx.Client, server: Server) -> None:
    ok = http.post("/v1/templates/ops/pipeline/1.0.0/validate").json()
    assert ok == {
        "valid": True,
        "errors": [],
        "required_capabilities": ["standard"],
        "step_handlers": ["operator_add_one", "operator_double"],
    }
    server.tasker.registry.unregister("operator_double")
    missing = http.post("/v1/templates/ops/pipeline/1.0.0/validate").json()
    assert missing["valid"] is False
    assert len(missing["errors"]) == 1
    assert "operator_double" in missing["errors"][0]
