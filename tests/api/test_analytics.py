"""The analytics routes (rest-api.md §3, §4) against a real server, on both backends.

A known mix: four ``pipeline`` tasks (two of them sleep ``SLEEP_MS`` in ``double``), one
``fragile`` task that fails permanently into ``error``, and one ``pipeline`` task backdated to
two days ago with a known duration. Counts and rates are asserted exactly; the average
durations against the store's own timestamps and the workers' reported run times.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tasker.api.views import format_ts
from tasker.client import ApiError, BottleneckAnalysis, PerformanceMetrics, TaskerClient
from tasker.orchestration.analytics import health_score
from tests.api.conftest import MakeServer, Server, assert_envelope, create, wait_for_status

SLEEP_MS = 400
OLD_TASK_SECONDS = 60.0
ANALYTICS_KEY = "analytics-key-0123456789"
OTHER_KEY = "dlq-reader-key-0123456789"


@dataclass
class Mix:
    server: Server
    http: httpx.Client
    recent: list[str]  # the five tasks created just now
    old: str  # the backdated pipeline task


def backdate(server: Server, task_uuid: str, created_at: datetime, finished_at: datetime) -> None:
    """Move a finished task's creation and terminal transition into the past, in SQL."""
    store = server.tasker.store
    if store.backend == "sqlite":
        sql = (
            "UPDATE tasks SET created_at = :created, state_entered_at = :finished"
            " WHERE task_uuid = :task"
        )
        params: dict[str, Any] = {
            "created": format_ts(created_at),
            "finished": format_ts(finished_at),
            "task": task_uuid,
        }
    else:
        sql = (
            "UPDATE tasks SET created_at = %(created)s, state_entered_at = %(finished)s"
            " WHERE task_uuid = %(task)s"
        )
        params = {"created": created_at, "finished": finished_at, "task": task_uuid}
    with store.transaction() as tx:
        tx.execute(sql, params)


@pytest.fixture
def mix(server: Server, http: httpx.Client) -> Mix:
    slow = [create(http, context={"value": i, "sleep_ms": SLEEP_MS}) for i in (1, 2)]
    fast = [create(http, context={"value": i}) for i in (3, 4)]
    fragile = create(http, "fragile", context={"order_id": 1})
    old = create(http, context={"value": 5})
    for task in [*slow, *fast, old]:
        wait_for_status(http, task["task_uuid"], {"complete"})
    wait_for_status(http, fragile["task_uuid"], {"error"})
    two_days_ago = datetime.now(UTC) - timedelta(hours=48)
    backdate(
        server,
        old["task_uuid"],
        two_days_ago,
        two_days_ago + timedelta(seconds=OLD_TASK_SECONDS),
    )
    recent = [t["task_uuid"] for t in [*slow, *fast, fragile]]
    return Mix(server, http, recent, old["task_uuid"])


def task_durations(server: Server, task_uuids: list[str]) -> list[float]:
    """Creation to terminal transition of each task, from the store."""
    durations = []
    with server.tasker.store.read() as tx:
        for task_uuid in task_uuids:
            timing = tx.task_state_timing(task_uuid)
            assert timing is not None
            state, entered_at, created_at = timing
            assert state.value in ("complete", "error")
            durations.append((entered_at - created_at).total_seconds())
    return durations


def step_run_times(http: httpx.Client, task_uuids: list[str]) -> dict[str, list[float]]:
    """Every reported handler run time (seconds) by step name, from the audit routes."""
    found: dict[str, list[float]] = {}
    for task_uuid in task_uuids:
        for step in http.get(f"/v1/tasks/{task_uuid}/workflow_steps").json():
            path = f"/v1/tasks/{task_uuid}/workflow_steps/{step['step_uuid']}/audit"
            for record in http.get(path).json():
                found.setdefault(step["name"], []).append(record["execution_time_ms"] / 1000.0)
    return found


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


# -- performance --------------------------------------------------------------------------


def test_performance_counts_rates_and_durations_of_the_window(mix: Mix) -> None:
    body = mix.http.get("/v1/analytics/performance").json()
    assert PerformanceMetrics.from_dict(body) is not None  # the documented shape
    counts = {
        k: body[k] for k in ("total_tasks", "active_tasks", "completed_tasks", "failed_tasks")
    }
    assert counts == {"total_tasks": 5, "active_tasks": 0, "completed_tasks": 4, "failed_tasks": 1}
    assert body["completion_rate"] == pytest.approx(0.8)
    assert body["error_rate"] == pytest.approx(0.2)
    assert body["tasks_per_hour"] == pytest.approx(5 / 24)
    assert body["steps_per_hour"] == pytest.approx(9 / 24)  # 4 x 2 pipeline runs + fetch
    expected_score = health_score(
        completed=4, failed=1, step_executions=9, failed_step_executions=1
    )
    assert expected_score == pytest.approx(0.7 * 0.8 + 0.3 * 8 / 9)
    assert body["system_health_score"] == pytest.approx(expected_score)
    assert body["average_task_duration_seconds"] == pytest.approx(
        mean(task_durations(mix.server, mix.recent)), abs=1e-3
    )
    runs = step_run_times(mix.http, mix.recent)
    assert sorted((name, len(times)) for name, times in runs.items()) == [
        ("add_one", 4),
        ("double", 4),
        ("fetch", 1),
    ]
    every_run = [t for times in runs.values() for t in times]
    assert body["average_step_duration_seconds"] == pytest.approx(mean(every_run), rel=1e-6)
    assert body["average_step_duration_seconds"] >= 2 * SLEEP_MS / 1000 / 9
    start = datetime.fromisoformat(body["analysis_period_start"])
    calculated = datetime.fromisoformat(body["calculated_at"])
    assert calculated - start == timedelta(hours=24)


def test_the_window_leaves_out_older_tasks_and_hours_widens_it(mix: Mix) -> None:
    wide = mix.http.get("/v1/analytics/performance", params={"hours": 72}).json()
    assert (wide["total_tasks"], wide["completed_tasks"], wide["failed_tasks"]) == (6, 5, 1)
    assert wide["tasks_per_hour"] == pytest.approx(6 / 72)
    assert wide["steps_per_hour"] == pytest.approx(11 / 72)
    durations = task_durations(mix.server, [*mix.recent, mix.old])
    assert OLD_TASK_SECONDS in [pytest.approx(d, abs=1e-3) for d in durations]
    assert wide["average_task_duration_seconds"] == pytest.approx(mean(durations), abs=1e-3)
    narrow = mix.http.get("/v1/analytics/performance", params={"hours": 1}).json()
    assert narrow["total_tasks"] == 5
    calculated = datetime.fromisoformat(narrow["calculated_at"])
    assert calculated - datetime.fromisoformat(narrow["analysis_period_start"]) == timedelta(
        hours=1
    )


def test_an_idle_system_reports_zeros_and_full_health(http: httpx.Client) -> None:
    body = http.get("/v1/analytics/performance").json()
    zeros = {k: v for k, v in body.items() if k not in ("analysis_period_start", "calculated_at")}
    assert zeros == {
        "total_tasks": 0,
        "active_tasks": 0,
        "completed_tasks": 0,
        "failed_tasks": 0,
        "completion_rate": 0.0,
        "error_rate": 0.0,
        "average_task_duration_seconds": 0.0,
        "average_step_duration_seconds": 0.0,
        "tasks_per_hour": 0.0,
        "steps_per_hour": 0.0,
        "system_health_score": 1.0,
    }
    analysis = http.get("/v1/analytics/bottlenecks").json()
    assert (analysis["slow_steps"], analysis["slow_tasks"]) == ([], [])
    assert analysis["resource_utilization"]["system_health"] == "healthy"
    assert analysis["recommendations"] == []


def test_a_running_task_is_active_until_it_completes(http: httpx.Client) -> None:
    task = create(http, context={"value": 1, "sleep_ms": 2000})
    running = http.get("/v1/analytics/performance").json()
    assert (running["total_tasks"], running["active_tasks"], running["completed_tasks"]) == (
        1,
        1,
        0,
    )
    assert running["average_task_duration_seconds"] == 0.0  # no finished task yet
    wait_for_status(http, task["task_uuid"], {"complete"})
    done = http.get("/v1/analytics/performance").json()
    assert (done["active_tasks"], done["completed_tasks"], done["completion_rate"]) == (0, 1, 1.0)


# -- bottlenecks --------------------------------------------------------------------------


def test_the_step_that_sleeps_is_the_slowest(mix: Mix) -> None:
    body = mix.http.get("/v1/analytics/bottlenecks").json()
    analysis = BottleneckAnalysis.from_dict(body)  # the documented shape
    # min_executions 5 (default): pipeline's two steps ran 5 times each, fetch only once.
    assert [(s.task_name, s.step_name) for s in analysis.slow_steps] == [
        ("pipeline", "double"),
        ("pipeline", "add_one"),
    ]
    double, add_one = body["slow_steps"]
    runs = step_run_times(mix.http, [*mix.recent, mix.old])
    assert (double["namespace_name"], double["version"]) == ("ops", "1.0.0")
    assert (double["execution_count"], double["error_count"], double["error_rate"]) == (5, 0, 0.0)
    assert double["average_duration_seconds"] == pytest.approx(mean(runs["double"]), rel=1e-6)
    assert double["max_duration_seconds"] == pytest.approx(max(runs["double"]), rel=1e-6)
    assert double["max_duration_seconds"] >= SLEEP_MS / 1000
    assert double["average_duration_seconds"] >= 2 * SLEEP_MS / 1000 / 5
    assert add_one["average_duration_seconds"] < double["average_duration_seconds"]
    assert double["last_executed_at"] is not None
    (pipeline,) = body["slow_tasks"]  # fragile finished once only
    assert (pipeline["task_name"], pipeline["execution_count"], pipeline["error_count"]) == (
        "pipeline",
        5,
        0,
    )
    assert pipeline["average_step_count"] == 2.0
    assert pipeline["max_duration_seconds"] == pytest.approx(OLD_TASK_SECONDS, abs=1e-3)
    durations = task_durations(mix.server, [*mix.recent[:4], mix.old])
    assert pipeline["average_duration_seconds"] == pytest.approx(mean(durations), abs=1e-3)


def test_min_executions_and_limit_filter_the_lists(mix: Mix) -> None:
    def analysis(**params: int) -> dict[str, Any]:
        response = mix.http.get("/v1/analytics/bottlenecks", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = analysis(min_executions=1)
    assert len(everything["slow_steps"]) == 3
    assert everything["slow_steps"][0]["step_name"] == "double"
    fetch = next(s for s in everything["slow_steps"] if s["step_name"] == "fetch")
    assert (fetch["task_name"], fetch["execution_count"], fetch["error_count"]) == ("fragile", 1, 1)
    assert fetch["error_rate"] == 1.0
    assert [t["task_name"] for t in everything["slow_tasks"]] == ["pipeline", "fragile"]
    fragile = everything["slow_tasks"][1]
    assert (fragile["execution_count"], fragile["error_count"], fragile["error_rate"]) == (
        1,
        1,
        1.0,
    )
    assert fragile["average_step_count"] == 2.0  # ship exists, it never ran

    limited = analysis(min_executions=1, limit=1)
    assert [s["step_name"] for s in limited["slow_steps"]] == ["double"]
    assert [t["task_name"] for t in limited["slow_tasks"]] == ["pipeline"]
    nothing = analysis(min_executions=6)
    assert (nothing["slow_steps"], nothing["slow_tasks"]) == ([], [])


def test_resources_and_recommendations(mix: Mix) -> None:
    body = mix.http.get("/v1/analytics/bottlenecks", params={"min_executions": 1}).json()
    resources = body["resource_utilization"]
    if mix.server.tasker.store.backend == "sqlite":
        assert resources["database_pool_utilization"] == 0.0
    else:
        assert 0.0 <= resources["database_pool_utilization"] <= 1.0
    assert resources["system_health"] == "degraded"  # score 0.83 over the last 24 h
    joined = "\n".join(body["recommendations"])
    assert "Step 'fetch' of ops/fragile@1.0.0 failed 1 of 1 executions (100%)" in joined
    assert "ops/fragile@1.0.0 ended in error 1 of 1 times (100%)" in joined
    assert "System health is degraded (score 0.83 over the last 24 h): 1 of 5" in joined
    assert "pipeline" not in joined
    quiet = mix.http.get("/v1/analytics/bottlenecks").json()  # fragile left out, health stays
    assert quiet["recommendations"] == [
        line for line in body["recommendations"] if "System" in line
    ]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/analytics/performance", {"hours": 0}),
        ("/v1/analytics/performance", {"hours": -5}),
        ("/v1/analytics/performance", {"hours": 24 * 366 + 1}),
        ("/v1/analytics/performance", {"hours": "day"}),
        ("/v1/analytics/performance", {"hours": "1.5"}),
        ("/v1/analytics/bottlenecks", {"limit": 0}),
        ("/v1/analytics/bottlenecks", {"limit": 101}),
        ("/v1/analytics/bottlenecks", {"min_executions": 0}),
        ("/v1/analytics/bottlenecks", {"min_executions": 10**12}),
        ("/v1/analytics/bottlenecks", {"min_executions": "many"}),
    ],
)
def test_bad_query_parameters_are_400(
    http: httpx.Client, path: str, params: dict[str, Any]
) -> None:
    assert_envelope(http.get(path, params=params), 400, "BAD_REQUEST")


# -- permission, client -------------------------------------------------------------------


@pytest.fixture
def secured(make_server: MakeServer) -> Server:
    keys = [
        {"key": ANALYTICS_KEY, "permissions": ["system:analytics_read"]},
        {"key": OTHER_KEY, "permissions": ["dlq:read", "dlq:stats", "tasks:*"]},
    ]
    server: Server = make_server(auth_enabled="true", api_keys=keys)
    return server


@pytest.mark.parametrize("path", ["/v1/analytics/performance", "/v1/analytics/bottlenecks"])
def test_only_system_analytics_read_opens_the_routes(secured: Server, path: str) -> None:
    allowed = httpx.get(secured.url + path, headers={"X-API-Key": ANALYTICS_KEY})
    assert allowed.status_code == 200, allowed.text
    denied = httpx.get(secured.url + path, headers={"X-API-Key": OTHER_KEY})
    error = assert_envelope(denied, 403, "FORBIDDEN")
    assert error["details"] == {"required_permission": "system:analytics_read"}
    assert_envelope(httpx.get(secured.url + path), 401, "UNAUTHORIZED")


@pytest.fixture
def client(mix: Mix) -> Iterator[TaskerClient]:
    with TaskerClient(mix.server.url) as c:
        yield c


def test_the_client_answers_typed_documents(client: TaskerClient) -> None:
    metrics = client.performance_metrics(hours=72)
    assert isinstance(metrics, PerformanceMetrics)
    assert (metrics.total_tasks, metrics.failed_tasks) == (6, 1)
    analysis = client.bottlenecks(limit=2, min_executions=1)
    assert isinstance(analysis, BottleneckAnalysis)
    assert len(analysis.slow_steps) == 2
    assert analysis.slow_steps[0].step_name == "double"
    assert analysis.resource_utilization.system_health == "degraded"
    with pytest.raises(ApiError, match="hours must be between 1 and 8784") as caught:
        client.performance_metrics(hours=0)
    assert caught.value.status_code == 400
