"""Health probes, Prometheus metrics and the OpenAPI document: public, always envelope-safe."""

from __future__ import annotations

import httpx

from tests.api.conftest import MakeServer, Server, assert_envelope, create, wait_for_status


def test_health_endpoints(http: httpx.Client) -> None:
    assert http.get("/health").json()["status"] == "healthy"
    assert http.get("/health/live").json()["status"] == "alive"
    ready = http.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert ready["checks"]["web_database"]["status"] == "healthy"
    assert set(ready["checks"]) == {
        "web_database",
        "orchestration_database",
        "circuit_breaker",
        "orchestration_system",
        "command_processor",
    }
    detailed = http.get("/health/detailed").json()
    assert detailed["status"] == "healthy"
    assert {"pool_utilization", "queue_depth", "channel_saturation"} <= set(detailed["checks"])
    assert detailed["info"]["workers_running"] is True


def test_unreachable_database_makes_ready_503_and_detailed_degraded(
    http: httpx.Client, server: Server
) -> None:
    server.tasker.stop()
    server.tasker.store.close()
    error = assert_envelope(http.get("/health/ready"), 503, "SERVICE_UNAVAILABLE")
    assert error["details"]["checks"]["web_database"]["status"] == "unhealthy"
    assert http.get("/health/ready").headers["retry-after"]
    detailed = http.get("/health/detailed")
    assert detailed.status_code == 200
    assert detailed.json()["status"] == "degraded"
    assert http.get("/health").status_code == 200
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert "tasker_health_database_connected 0" in metrics.text


def test_metrics_count_requests_and_read_gauges(http: httpx.Client) -> None:
    task = create(http, context={"value": 4})
    wait_for_status(http, task["task_uuid"], {"complete"})
    http.get("/v1/tasks/not-a-uuid")
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'tasker_tasks_requests_total{namespace="ops",task_type="pipeline"} 1' in text
    assert (
        'tasker_api_requests_total{method="GET",route="/v1/tasks/{task_uuid}",status="400"} 1'
        in text
    )
    assert 'tasker_tasks_active{state="complete"} 1' in text
    assert "tasker_dlq_pending_investigations 0" in text
    assert "# TYPE tasker_auth_failures_total counter" in text


def test_openapi_document_lists_every_route_with_its_permission(http: httpx.Client) -> None:
    document = http.get("/api-docs/openapi.json").json()
    paths = document["paths"]
    assert paths["/v1/tasks"]["post"]["x-permission"] == "tasks:create"
    assert (
        paths["/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"]["patch"]["x-permission"]
        == "steps:resolve"
    )
    assert paths["/v1/dlq/stats"]["get"]["x-permission"] == "dlq:stats"
    assert "x-permission" not in paths["/health"]["get"]
    assert set(document["components"]["securitySchemes"]) == {"ApiKeyAuth", "BearerAuth"}
    assert http.get("/api-docs/ui").status_code == 200


def test_config_route_exists_only_when_enabled(make_server: MakeServer) -> None:
    plain = make_server()
    assert_envelope(httpx.get(plain.url + "/config"), 404, "NOT_FOUND")
    enabled = make_server(config_endpoint_enabled=True, api_key="k" * 32)
    body = httpx.get(enabled.url + "/config").json()
    assert body["auth"]["api_key_count"] == 1
    assert "k" * 32 not in str(body)
    assert "sqlite" not in str(body)
    assert "postgresql" not in str(body)
