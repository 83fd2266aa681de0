"""``TaskerClient``: the REST API from Python, with typed answers and tasker's own errors.

    with TaskerClient("http://127.0.0.1:8080", api_key="...") as client:
        task = client.create_task("order_fulfillment", namespace="shop", context={"order_id": 7})
        print(client.get_task(task.task_uuid).status)

Answers are frozen dataclasses whose fields are the JSON fields of rest-api.md §4 (unknown
fields a newer server sends are ignored). Errors are ``TaskerError``s: a 404 raises
``TaskNotFound`` / ``StepNotFound`` / ``TemplateNotFound`` / ``NotFound`` and a duplicate
raises ``DuplicateTask`` carrying the existing ``task_uuid``, exactly as the embedded runtime
does; every other refusal raises ``ApiError`` with the status, code and request id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx

from tasker.errors import (
    DuplicateTask,
    NotFound,
    StepNotFound,
    TaskerError,
    TaskNotFound,
    TemplateNotFound,
)

__all__ = [
    "ApiError",
    "BottleneckAnalysis",
    "DlqEntry",
    "DlqInvestigationQueueEntry",
    "DlqStats",
    "HealthResponse",
    "PaginationInfo",
    "PerformanceMetrics",
    "ResourceUtilization",
    "SlowStep",
    "SlowTask",
    "StalenessMonitoring",
    "StepAuditResponse",
    "StepReadiness",
    "StepResponse",
    "TaskListResponse",
    "TaskResponse",
    "TaskerClient",
    "TaskerConnectionError",
    "TemplateDetail",
    "TemplateListResponse",
]

JSONObject = dict[str, Any]
T = TypeVar("T", bound="_Model")


class ApiError(TaskerError):
    """The server refused a request; ``code`` is rest-api.md §1's error code.

    Attributes:
        status_code: the HTTP status.
        code: e.g. ``BAD_REQUEST``, ``FORBIDDEN``, ``SERVICE_UNAVAILABLE``.
        request_id: quote it when asking for the server log.
        details: the envelope's ``details`` object, if any.
    """

    retryable_default = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        transient = status_code in (408, 429, 502, 503, 504)
        super().__init__(message, retryable=True if transient else None)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.details = dict(details or {})


class TaskerConnectionError(ApiError):
    """The server could not be reached (refused, timed out, DNS); check the URL and retry."""

    retryable_default = True


# -- response types -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Model:
    """Build from a JSON object, keeping known fields; ``_nested`` names nested types."""

    _nested: ClassVar[Mapping[str, type[_Model]]] = {}
    _nested_lists: ClassVar[Mapping[str, type[_Model]]] = {}

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """The dataclass for one JSON object (missing optional keys become ``None``)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in cls._nested and isinstance(value, Mapping):
                value = cls._nested[f.name].from_dict(value)
            elif f.name in cls._nested_lists and isinstance(value, list):
                value = tuple(cls._nested_lists[f.name].from_dict(v) for v in value)
            values[f.name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class StepReadiness(_Model):
    workflow_step_uuid: str
    task_uuid: str
    name: str
    current_state: str
    named_step_uuid: str | None = None
    dependencies_satisfied: bool = False
    retry_eligible: bool = False
    ready_for_execution: bool = False
    last_failure_at: str | None = None
    next_retry_at: str | None = None
    total_parents: int = 0
    completed_parents: int = 0
    attempts: int = 0
    max_attempts: int = 0
    backoff_request_seconds: float | None = None
    last_attempted_at: str | None = None


@dataclass(frozen=True, slots=True)
class TaskResponse(_Model):
    """A task (rest-api.md §4); finished when ``status`` is terminal (``is_finished``)."""

    _nested_lists: ClassVar[Mapping[str, type[_Model]]] = {"steps": StepReadiness}

    task_uuid: str
    name: str
    namespace: str
    version: str
    status: str
    created_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    context: Any = None
    initiator: str | None = None
    source_system: str | None = None
    reason: str | None = None
    priority: int | None = None
    tags: list[str] | None = None
    correlation_id: str | None = None
    parent_correlation_id: str | None = None
    total_steps: int = 0
    pending_steps: int = 0
    in_progress_steps: int = 0
    completed_steps: int = 0
    failed_steps: int = 0
    ready_steps: int = 0
    execution_status: str | None = None
    recommended_action: str | None = None
    completion_percentage: float = 0.0
    health_status: str | None = None
    steps: tuple[StepReadiness, ...] = ()

    @property
    def is_finished(self) -> bool:
        """Whether the task is terminal: ``complete``, ``error``, ``cancelled`` or resolved."""
        return self.status in ("complete", "error", "cancelled", "resolved_manually")


@dataclass(frozen=True, slots=True)
class PaginationInfo(_Model):
    page: int
    per_page: int
    total_count: int
    total_pages: int
    has_next: bool
    has_previous: bool


@dataclass(frozen=True, slots=True)
class TaskListResponse(_Model):
    _nested: ClassVar[Mapping[str, type[_Model]]] = {"pagination": PaginationInfo}
    _nested_lists: ClassVar[Mapping[str, type[_Model]]] = {"tasks": TaskResponse}

    tasks: tuple[TaskResponse, ...]
    pagination: PaginationInfo


@dataclass(frozen=True, slots=True)
class StepResponse(_Model):
    """A step; ``results`` is the stored envelope, the handler's output is ``results["result"]``."""

    step_uuid: str
    task_uuid: str
    name: str
    current_state: str
    created_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    results: JSONObject | None = None
    dependencies_satisfied: bool = False
    retry_eligible: bool = False
    ready_for_execution: bool = False
    total_parents: int = 0
    completed_parents: int = 0
    attempts: int = 0
    max_attempts: int = 0
    last_failure_at: str | None = None
    next_retry_at: str | None = None
    last_attempted_at: str | None = None


@dataclass(frozen=True, slots=True)
class StepAuditResponse(_Model):
    audit_uuid: str
    workflow_step_uuid: str
    transition_uuid: str
    task_uuid: str
    recorded_at: str
    success: bool
    step_name: str
    to_state: str
    worker_uuid: str | None = None
    correlation_id: str | None = None
    execution_time_ms: float | None = None
    result: Any = None
    from_state: str | None = None


@dataclass(frozen=True, slots=True)
class HealthResponse(_Model):
    """``status`` is ``ready`` (or ``healthy``/``alive``) or, when the server says 503, the code."""

    status: str
    timestamp: str | None = None
    checks: JSONObject | None = None
    info: JSONObject | None = None

    @property
    def is_ready(self) -> bool:
        return self.status in ("ready", "healthy", "alive")


@dataclass(frozen=True, slots=True)
class DlqEntry(_Model):
    dlq_entry_uuid: str
    task_uuid: str
    original_state: str
    dlq_reason: str
    dlq_timestamp: str
    resolution_status: str
    resolution_timestamp: str | None = None
    resolution_notes: str | None = None
    resolved_by: str | None = None
    task_snapshot: Any = None
    metadata: Any = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, slots=True)
class DlqStats(_Model):
    dlq_reason: str
    total_entries: int
    pending: int = 0
    manually_resolved: int = 0
    permanent_failures: int = 0
    cancelled: int = 0
    oldest_entry: str | None = None
    newest_entry: str | None = None
    avg_resolution_time_minutes: float | None = None


@dataclass(frozen=True, slots=True)
class DlqInvestigationQueueEntry(_Model):
    dlq_entry_uuid: str
    task_uuid: str
    original_state: str
    dlq_reason: str
    dlq_timestamp: str
    minutes_in_dlq: float
    priority_score: float
    namespace_name: str | None = None
    task_name: str | None = None
    current_state: str | None = None
    time_in_state_minutes: float | None = None


@dataclass(frozen=True, slots=True)
class StalenessMonitoring(_Model):
    task_uuid: str
    current_state: str
    time_in_state_minutes: float
    task_age_minutes: float
    staleness_threshold_minutes: float
    health_status: str
    priority: int
    namespace_name: str | None = None
    task_name: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateListResponse(_Model):
    namespaces: list[JSONObject]
    templates: list[JSONObject]
    total_count: int


@dataclass(frozen=True, slots=True)
class TemplateDetail(_Model):
    name: str
    namespace: str
    version: str
    steps: list[JSONObject]
    description: str | None = None
    configuration: JSONObject | None = None


@dataclass(frozen=True, slots=True)
class PerformanceMetrics(_Model):
    """Tasks created in the last ``hours``; rates are fractions, the health score is 0..1."""

    total_tasks: int
    active_tasks: int
    completed_tasks: int
    failed_tasks: int
    completion_rate: float
    error_rate: float
    average_task_duration_seconds: float
    average_step_duration_seconds: float
    tasks_per_hour: float
    steps_per_hour: float
    system_health_score: float
    analysis_period_start: str
    calculated_at: str


@dataclass(frozen=True, slots=True)
class SlowStep(_Model):
    namespace_name: str
    task_name: str
    version: str
    step_name: str
    average_duration_seconds: float
    max_duration_seconds: float
    execution_count: int
    error_count: int
    error_rate: float
    last_executed_at: str | None = None


@dataclass(frozen=True, slots=True)
class SlowTask(_Model):
    namespace_name: str
    task_name: str
    version: str
    average_duration_seconds: float
    max_duration_seconds: float
    execution_count: int
    error_count: int
    error_rate: float
    average_step_count: float
    last_executed_at: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceUtilization(_Model):
    database_pool_utilization: float
    system_health: str


@dataclass(frozen=True, slots=True)
class BottleneckAnalysis(_Model):
    """The slowest template steps and templates, slowest first, and what to look at."""

    _nested: ClassVar[Mapping[str, type[_Model]]] = {"resource_utilization": ResourceUtilization}
    _nested_lists: ClassVar[Mapping[str, type[_Model]]] = {
        "slow_steps": SlowStep,
        "slow_tasks": SlowTask,
    }

    slow_steps: tuple[SlowStep, ...]
    slow_tasks: tuple[SlowTask, ...]
    resource_utilization: ResourceUtilization
    recommendations: list[str]


# -- the client -----------------------------------------------------------------------------


class TaskerClient:
    """A synchronous client for one tasker server.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8080``.
        api_key: sent in ``api_key_header`` when given.
        token: a JWT sent as ``Authorization: Bearer``; wins over ``api_key``.
        api_key_header: the server's API-key header name.
        timeout: seconds per request.
        initiator, source_system: defaults for ``create_task`` (python-api.md §10).
        transport: an ``httpx`` transport (tests: ``httpx.ASGITransport``/``MockTransport``).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        token: str | None = None,
        api_key_header: str = "X-API-Key",
        timeout: float = 30.0,
        initiator: str = "tasker-core-python",
        source_system: str = "tasker-core",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif api_key:
            headers[api_key_header] = api_key
        self.base_url = base_url.rstrip("/")
        self.initiator = initiator
        self.source_system = source_system
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TaskerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tasks ----------------------------------------------------------------------------

    def create_task(
        self,
        name: str,
        *,
        namespace: str = "default",
        context: Mapping[str, Any] | None = None,
        version: str = "1.0.0",
        reason: str = "Task requested",
        **extra: Any,
    ) -> TaskResponse:
        """Create a task; ``extra`` holds other ``TaskRequest`` fields (tags, priority, ...).

        Raises:
            TemplateNotFound: no such template on the server.
            DuplicateTask: a task with this identity exists; ``task_uuid`` names it.
            ApiError: any other refusal (400 rule, 401/403, 503 ...).
        """
        body: JSONObject = {
            "name": name,
            "namespace": namespace,
            "version": version,
            "context": dict(context) if context is not None else {},
            "reason": reason,
            "initiator": self.initiator,
            "source_system": self.source_system,
            **extra,
        }
        data = self._request("POST", "/v1/tasks", json=body, not_found=TemplateNotFound)
        return TaskResponse.from_dict(data)

    def create_tasks(self, tasks: Iterable[Mapping[str, Any]]) -> list[TaskResponse]:
        """Create up to 100 tasks in one transaction, all or none; answered in order.

        Each item is a ``TaskRequest`` body (``name``, ``namespace``, ``context``, ...) with
        ``create_task``'s defaults (version ``1.0.0``, the client's initiator and source).

        Raises:
            TemplateNotFound, DuplicateTask, ApiError: as ``create_task``, the message naming
                the refused request (``request 2: ...``); no task was created.
        """
        defaults = {
            "version": "1.0.0",
            "context": {},
            "reason": "Task requested",
            "initiator": self.initiator,
            "source_system": self.source_system,
        }
        bodies = [{**defaults, **task} for task in tasks]
        data = self._request(
            "POST", "/v1/tasks/batch", json={"tasks": bodies}, not_found=TemplateNotFound
        )
        return [TaskResponse.from_dict(task) for task in data["tasks"]]

    def get_task(self, task_uuid: str) -> TaskResponse:
        """One task with its step readiness. Raises ``TaskNotFound``."""
        return TaskResponse.from_dict(self._request("GET", f"/v1/tasks/{task_uuid}"))

    def get_task_summary(self, task_uuid: str) -> JSONObject:
        """The task summary document (task, template steps, steps, DLQ, links)."""
        result: JSONObject = self._request("GET", f"/v1/tasks/{task_uuid}/summary")
        return result

    def list_tasks(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        namespace: str | None = None,
        status: str | None = None,
        initiator: str | None = None,
        source_system: str | None = None,
    ) -> TaskListResponse:
        """A page of tasks, newest first; ``offset`` must be a multiple of ``limit`` (1..100).

        Raises:
            ValueError: ``offset`` is not a multiple of ``limit``.
        """
        if limit < 1 or offset < 0 or offset % limit:
            raise ValueError(
                f"offset ({offset}) must be a non-negative multiple of limit ({limit}):"
                " the API pages by page/per_page"
            )
        params = {
            "page": offset // limit + 1,
            "per_page": limit,
            "namespace": namespace,
            "status": status,
            "initiator": initiator,
            "source_system": source_system,
        }
        return TaskListResponse.from_dict(self._request("GET", "/v1/tasks", params=params))

    def cancel_task(self, task_uuid: str) -> TaskResponse:
        """Cancel a task and its unfinished steps; the answer is the cancelled task.

        Raises:
            TaskNotFound: no such task.
            ApiError: 400 when the task already finished.
        """
        return TaskResponse.from_dict(self._request("DELETE", f"/v1/tasks/{task_uuid}"))

    # -- steps ----------------------------------------------------------------------------

    def list_task_steps(self, task_uuid: str) -> list[StepResponse]:
        """The task's steps (``[]`` for an unknown task, as the server answers)."""
        data = self._request("GET", f"/v1/tasks/{task_uuid}/workflow_steps")
        return [StepResponse.from_dict(item) for item in data]

    def get_step(self, task_uuid: str, step_uuid: str) -> StepResponse:
        """One step of the task. Raises ``StepNotFound``."""
        path = f"/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"
        return StepResponse.from_dict(self._request("GET", path, not_found=StepNotFound))

    def get_step_audit_history(self, task_uuid: str, step_uuid: str) -> list[StepAuditResponse]:
        """The step's result audit trail, oldest first. Raises ``StepNotFound``."""
        path = f"/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit"
        data = self._request("GET", path, not_found=StepNotFound)
        return [StepAuditResponse.from_dict(item) for item in data]

    def resolve_step(
        self,
        task_uuid: str,
        step_uuid: str,
        action: str,
        *,
        reason: str,
        by: str = "operator",
        result: Any = None,
        metadata: Any = None,
    ) -> StepResponse:
        """An operator action on a step (rest-api.md §3.3); the task then re-evaluates.

        Args:
            action: ``reset_for_retry``, ``resolve_manually`` or ``complete_manually``.
            reason: why, for the audit trail.
            by: who (``reset_by`` / ``resolved_by`` / ``completed_by``).
            result, metadata: the stored result of ``complete_manually``.

        Raises:
            StepNotFound: no such step in this task.
            ApiError: 400 when the step's state does not allow the action.
            ValueError: an unknown action.
        """
        body: JSONObject = {"action_type": action, "reason": reason}
        if action == "reset_for_retry":
            body["reset_by"] = by
        elif action == "resolve_manually":
            body["resolved_by"] = by
        elif action == "complete_manually":
            completion: JSONObject = {"result": result}
            if metadata is not None:
                completion["metadata"] = metadata
            body["completed_by"] = by
            body["completion_data"] = completion
        else:
            raise ValueError(
                f"unknown action {action!r}: use reset_for_retry, resolve_manually"
                " or complete_manually"
            )
        path = f"/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"
        data = self._request("PATCH", path, json=body, not_found=StepNotFound)
        return StepResponse.from_dict(data)

    def reset_step(
        self, task_uuid: str, step_uuid: str, *, reason: str, by: str = "operator"
    ) -> StepResponse:
        """``resolve_step(..., "reset_for_retry")``: an ``error`` step runs again, attempts 0."""
        return self.resolve_step(task_uuid, step_uuid, "reset_for_retry", reason=reason, by=by)

    def resolve_step_manually(
        self, task_uuid: str, step_uuid: str, *, reason: str, by: str = "operator"
    ) -> StepResponse:
        """``resolve_step(..., "resolve_manually")``: satisfied without results."""
        return self.resolve_step(task_uuid, step_uuid, "resolve_manually", reason=reason, by=by)

    def complete_step_manually(
        self,
        task_uuid: str,
        step_uuid: str,
        result: Any,
        *,
        reason: str,
        by: str = "operator",
        metadata: Any = None,
    ) -> StepResponse:
        """``resolve_step(..., "complete_manually")``: complete with operator-supplied results."""
        return self.resolve_step(
            task_uuid,
            step_uuid,
            "complete_manually",
            reason=reason,
            by=by,
            result=result,
            metadata=metadata,
        )

    # -- DLQ ------------------------------------------------------------------------------

    def list_dlq(
        self, *, resolution_status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[DlqEntry]:
        """DLQ entries, newest first."""
        params = {"resolution_status": resolution_status, "limit": limit, "offset": offset}
        return [DlqEntry.from_dict(e) for e in self._request("GET", "/v1/dlq", params=params)]

    def get_dlq_entry(self, task_uuid: str) -> DlqEntry:
        """The task's latest DLQ entry. Raises ``NotFound``."""
        return DlqEntry.from_dict(
            self._request("GET", f"/v1/dlq/task/{task_uuid}", not_found=NotFound)
        )

    def update_dlq_entry(
        self,
        dlq_entry_uuid: str,
        *,
        resolution_status: str | None = None,
        resolution_notes: str | None = None,
        resolved_by: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> JSONObject:
        """Record an investigation's outcome; answers ``{success, message, dlq_entry_uuid}``."""
        body = {
            k: v
            for k, v in {
                "resolution_status": resolution_status,
                "resolution_notes": resolution_notes,
                "resolved_by": resolved_by,
                "metadata": dict(metadata) if metadata is not None else None,
            }.items()
            if v is not None
        }
        result: JSONObject = self._request(
            "PATCH", f"/v1/dlq/entry/{dlq_entry_uuid}", json=body, not_found=NotFound
        )
        return result

    def dlq_stats(self) -> list[DlqStats]:
        """Counts per DLQ reason."""
        return [DlqStats.from_dict(row) for row in self._request("GET", "/v1/dlq/stats")]

    def dlq_investigation_queue(self, *, limit: int = 50) -> list[DlqInvestigationQueueEntry]:
        """Pending entries, highest triage priority first."""
        data = self._request("GET", "/v1/dlq/investigation-queue", params={"limit": limit})
        return [DlqInvestigationQueueEntry.from_dict(row) for row in data]

    def dlq_staleness(self, *, limit: int = 50) -> list[StalenessMonitoring]:
        """Unfinished tasks by how overdue they are."""
        data = self._request("GET", "/v1/dlq/staleness", params={"limit": limit})
        return [StalenessMonitoring.from_dict(row) for row in data]

    # -- analytics ------------------------------------------------------------------------

    def performance_metrics(self, *, hours: int = 24) -> PerformanceMetrics:
        """Outcomes, durations, throughput and health of the tasks created in the last
        ``hours`` (1..8784). Raises ``ApiError`` (400) for a window out of range."""
        data = self._request("GET", "/v1/analytics/performance", params={"hours": hours})
        return PerformanceMetrics.from_dict(data)

    def bottlenecks(self, *, limit: int = 10, min_executions: int = 5) -> BottleneckAnalysis:
        """The slowest template steps and templates (``limit`` 1..100 each) with at least
        ``min_executions`` executions, resource use and recommendations."""
        params = {"limit": limit, "min_executions": min_executions}
        data = self._request("GET", "/v1/analytics/bottlenecks", params=params)
        return BottleneckAnalysis.from_dict(data)

    # -- templates and health -------------------------------------------------------------

    def list_templates(self, *, namespace: str | None = None) -> TemplateListResponse:
        """Registered templates."""
        data = self._request("GET", "/v1/templates", params={"namespace": namespace})
        return TemplateListResponse.from_dict(data)

    def get_template(self, namespace: str, name: str, version: str) -> TemplateDetail:
        """One template. Raises ``TemplateNotFound``."""
        path = f"/v1/templates/{namespace}/{name}/{version}"
        return TemplateDetail.from_dict(self._request("GET", path, not_found=TemplateNotFound))

    def health_check(self) -> HealthResponse:
        """The server's readiness; a 503 is answered as a ``HealthResponse`` too (not raised).

        Raises:
            TaskerConnectionError: the server does not answer at all.
        """
        response = self._send("GET", "/health/ready")
        if response.status_code == 503:
            error = _envelope(response)
            details = error.get("details") or {}
            return HealthResponse(
                status="not_ready",
                timestamp=None,
                checks=details.get("checks") if isinstance(details, dict) else None,
                info={"message": error.get("message")},
            )
        return HealthResponse.from_dict(self._check(response, NotFound))

    # -- plumbing -------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            return self._http.request(method, path, json=json, params=clean or None)
        except httpx.TimeoutException as exc:
            raise TaskerConnectionError(
                f"{method} {self.base_url}{path} timed out: {exc}", status_code=0, code="TIMEOUT"
            ) from None
        except httpx.TransportError as exc:
            raise TaskerConnectionError(
                f"cannot reach the tasker server at {self.base_url}: {exc}",
                status_code=0,
                code="CONNECTION_ERROR",
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        not_found: type[NotFound] = TaskNotFound,
    ) -> Any:
        return self._check(self._send(method, path, json=json, params=params), not_found)

    def _check(self, response: httpx.Response, not_found: type[NotFound]) -> Any:
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise ApiError(
                    f"the server answered {response.status_code} with a body that is not JSON",
                    status_code=response.status_code,
                    code="INVALID_RESPONSE",
                ) from None
        error = _envelope(response)
        message = str(error.get("message") or response.reason_phrase or "request failed")
        details = error.get("details") if isinstance(error.get("details"), dict) else None
        if response.status_code == 404:
            raise not_found(message)
        if response.status_code == 409 and details and details.get("task_uuid"):
            raise DuplicateTask(message, task_uuid=str(details["task_uuid"]))
        raise ApiError(
            message,
            status_code=response.status_code,
            code=str(error.get("code") or "HTTP_ERROR"),
            request_id=error.get("request_id") or response.headers.get("x-request-id"),
            details=details,
        )


def _envelope(response: httpx.Response) -> JSONObject:
    """The ``error`` object of an error body, or ``{}`` when the body is not the envelope."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
