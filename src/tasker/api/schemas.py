"""Request and response bodies of the REST API, field for field as rest-api.md §3-§4 names them.

Pydantic lives here at the edge (STYLE.md §5); routes build these from domain records and never
hand a domain object to the framework. Timestamps travel as strings in the
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` form, which is RFC 3339 UTC as well.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BottleneckAnalysis",
    "CompleteManuallyAction",
    "CompletionData",
    "DlqEntry",
    "DlqInvestigationQueueEntry",
    "DlqStats",
    "DlqUpdateRequest",
    "DlqUpdateResponse",
    "ErrorBody",
    "ErrorEnvelope",
    "HealthCheck",
    "HealthDetail",
    "HealthResponse",
    "NamespaceSummary",
    "Pagination",
    "PerformanceMetrics",
    "ResetForRetryAction",
    "ResolveManuallyAction",
    "ResourceUtilization",
    "SlowStep",
    "SlowTask",
    "StalenessMonitoring",
    "StepAction",
    "StepAuditResponse",
    "StepReadiness",
    "StepResponse",
    "TaskBatchCreateRequest",
    "TaskBatchResponse",
    "TaskCreateRequest",
    "TaskListResponse",
    "TaskResponse",
    "TaskSummaryResponse",
    "TemplateDetail",
    "TemplateListResponse",
    "TemplateStep",
    "TemplateSummary",
    "TemplateValidation",
]

JSONObject = dict[str, Any]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------


class ErrorBody(_Out):
    code: str
    message: str
    request_id: str
    details: JSONObject | None = None


class ErrorEnvelope(_Out):
    """Every non-2xx body (rest-api.md §1)."""

    error: ErrorBody


# -- tasks --------------------------------------------------------------------------------


class TaskCreateRequest(BaseModel):
    """``TaskRequest`` of rest-api.md §3.1. Unknown fields are ignored, as in the original.

    Only shapes are checked here (a wrong type is 422); value rules (empty name, lengths, the
    priority range, context limits) are checked by the route and answered with 400.
    """

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="1-255 characters")
    namespace: str = Field(description="1-255 characters")
    version: str = Field(description="1-50 characters")
    context: Any = Field(default_factory=dict, description="a JSON object: the handlers' input")
    initiator: str | None = Field(default=None, description="1-255 characters")
    source_system: str | None = Field(default=None, description="1-255 characters")
    reason: str | None = Field(default=None, description="1-500 characters")
    tags: list[str] = Field(default_factory=list)
    priority: int | None = Field(default=None, description="-100..100")
    correlation_id: str | None = Field(default=None, description="a UUID; default: generated")
    parent_correlation_id: str | None = Field(default=None, description="a UUID")
    idempotency_key: str | None = Field(default=None, description="1-255 characters")
    options: JSONObject | None = None
    requested_at: str | None = Field(default=None, description="accepted and overwritten")


class TaskBatchCreateRequest(BaseModel):
    """Several ``TaskRequest`` bodies created in one transaction, all or none (ADR 0013)."""

    model_config = ConfigDict(extra="ignore")

    tasks: list[TaskCreateRequest] = Field(description="1-100 task requests")


class StepReadiness(_Out):
    workflow_step_uuid: str
    task_uuid: str
    named_step_uuid: str
    name: str
    current_state: str
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    last_failure_at: str | None = None
    next_retry_at: str | None = None
    total_parents: int
    completed_parents: int
    attempts: int
    max_attempts: int
    backoff_request_seconds: float | None = None
    last_attempted_at: str | None = None


class TaskResponse(_Out):
    task_uuid: str
    name: str
    namespace: str
    version: str
    status: str
    created_at: str
    updated_at: str
    completed_at: str | None = None
    context: Any
    initiator: str
    source_system: str
    reason: str
    priority: int | None = None
    tags: list[str] | None = None
    correlation_id: str
    parent_correlation_id: str | None = None
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    execution_status: str
    recommended_action: str
    completion_percentage: float
    health_status: str
    steps: list[StepReadiness]


class TaskBatchResponse(_Out):
    tasks: list[TaskResponse]


class Pagination(_Out):
    page: int
    per_page: int
    total_count: int
    total_pages: int
    has_next: bool
    has_previous: bool


class TaskListResponse(_Out):
    tasks: list[TaskResponse]
    pagination: Pagination


class SummaryTask(_Out):
    task_uuid: str
    name: str
    namespace: str
    version: str
    status: str
    created_at: str
    updated_at: str
    completed_at: str | None = None
    initiator: str
    source_system: str
    reason: str
    priority: int | None = None
    tags: list[str] | None = None
    correlation_id: str
    parent_correlation_id: str | None = None
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    execution_status: str
    recommended_action: str | None = None
    completion_percentage: float
    health_status: str


class SummaryTemplateStep(_Out):
    name: str
    step_type: str
    handler: str
    dependencies: list[str]
    retryable: bool
    max_attempts: int


class SummaryTemplate(_Out):
    steps: list[SummaryTemplateStep]


class SummaryStepError(_Out):
    error_type: str | None = None
    retryable: bool
    status_code: int | None = None


class SummaryStep(_Out):
    step_uuid: str
    name: str
    current_state: str
    created_at: str | None = None
    completed_at: str | None = None
    last_attempted_at: str | None = None
    attempts: int
    max_attempts: int
    dependencies_satisfied: bool
    retry_eligible: bool
    error: SummaryStepError | None = None


class SummaryDlq(_Out):
    in_dlq: bool
    dlq_reason: str | None = None
    resolution_status: str | None = None


class SummaryLinks(_Out):
    task: str
    steps: str
    dlq: str


class TaskSummaryResponse(_Out):
    task: SummaryTask
    template: SummaryTemplate
    steps: list[SummaryStep]
    dlq: SummaryDlq
    links: SummaryLinks


# -- steps --------------------------------------------------------------------------------


class StepResponse(_Out):
    step_uuid: str
    task_uuid: str
    name: str
    created_at: str
    updated_at: str
    completed_at: str | None = None
    results: JSONObject | None = None
    current_state: str
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    total_parents: int
    completed_parents: int
    attempts: int
    max_attempts: int
    last_failure_at: str | None = None
    next_retry_at: str | None = None
    last_attempted_at: str | None = None


class StepAuditResponse(_Out):
    """Optional keys are omitted when null (rest-api.md §4)."""

    audit_uuid: str
    workflow_step_uuid: str
    transition_uuid: str
    task_uuid: str
    recorded_at: str
    worker_uuid: str | None = None
    correlation_id: str | None = None
    success: bool
    execution_time_ms: float | None = None
    result: Any = None
    step_name: str
    from_state: str | None = None
    to_state: str


class ResetForRetryAction(BaseModel):
    action_type: Literal["reset_for_retry"]
    reason: str = Field(description="1-500 characters")
    reset_by: str | None = Field(default=None, description="1-255 characters; default: the caller")


class ResolveManuallyAction(BaseModel):
    action_type: Literal["resolve_manually"]
    reason: str = Field(description="1-500 characters")
    resolved_by: str | None = Field(
        default=None, description="1-255 characters; default: the caller"
    )


class CompletionData(BaseModel):
    result: Any
    metadata: Any = None


class CompleteManuallyAction(BaseModel):
    action_type: Literal["complete_manually"]
    completion_data: CompletionData
    reason: str = Field(description="1-500 characters")
    completed_by: str | None = Field(
        default=None, description="1-255 characters; default: the caller"
    )


StepAction = Annotated[
    ResetForRetryAction | ResolveManuallyAction | CompleteManuallyAction,
    Field(discriminator="action_type"),
]
"""The PATCH step body, tagged by ``action_type`` (rest-api.md §3.3)."""


# -- templates ----------------------------------------------------------------------------


class NamespaceSummary(_Out):
    name: str
    description: str | None = None
    template_count: int


class TemplateSummary(_Out):
    name: str
    namespace: str
    version: str
    description: str | None = None
    step_count: int


class TemplateListResponse(_Out):
    namespaces: list[NamespaceSummary]
    templates: list[TemplateSummary]
    total_count: int


class TemplateStep(_Out):
    name: str
    description: str | None = None
    default_retryable: bool
    default_max_attempts: int
    result_schema: JSONObject | None = None


class TemplateDetail(_Out):
    name: str
    namespace: str
    version: str
    description: str | None = None
    configuration: JSONObject | None = None
    steps: list[TemplateStep]


class TemplateValidation(_Out):
    """Worker API ``POST .../validate`` (rest-api.md §5): can this process run the template?"""

    valid: bool
    errors: list[str]
    required_capabilities: list[str]
    step_handlers: list[str]


# -- DLQ ----------------------------------------------------------------------------------


class DlqEntry(_Out):
    dlq_entry_uuid: str
    task_uuid: str
    original_state: str
    dlq_reason: str
    dlq_timestamp: str
    resolution_status: str
    resolution_timestamp: str | None = None
    resolution_notes: str | None = None
    resolved_by: str | None = None
    task_snapshot: Any
    metadata: Any = None
    created_at: str
    updated_at: str


class DlqUpdateRequest(BaseModel):
    """rest-api.md §3.4."""

    resolution_status: (
        Literal["pending", "manually_resolved", "permanently_failed", "cancelled"] | None
    ) = None
    resolution_notes: str | None = Field(default=None, description="at most 10000 characters")
    resolved_by: str | None = Field(default=None, description="1-255 characters")
    metadata: JSONObject | None = None


class DlqUpdateResponse(_Out):
    success: bool
    message: str
    dlq_entry_uuid: str


class DlqStats(_Out):
    dlq_reason: str
    total_entries: int
    pending: int
    manually_resolved: int
    permanent_failures: int
    cancelled: int
    oldest_entry: str | None = None
    newest_entry: str | None = None
    avg_resolution_time_minutes: float | None = None


class DlqInvestigationQueueEntry(_Out):
    dlq_entry_uuid: str
    task_uuid: str
    original_state: str
    dlq_reason: str
    dlq_timestamp: str
    minutes_in_dlq: float
    namespace_name: str | None = None
    task_name: str | None = None
    current_state: str | None = None
    time_in_state_minutes: float | None = None
    priority_score: float


class StalenessMonitoring(_Out):
    task_uuid: str
    namespace_name: str | None = None
    task_name: str | None = None
    current_state: str
    time_in_state_minutes: float
    task_age_minutes: float
    staleness_threshold_minutes: float
    health_status: str = Field(description="healthy | warning | stale")
    priority: int


# -- analytics ----------------------------------------------------------------------------


class PerformanceMetrics(_Out):
    """Tasks created in the last ``hours`` (tasker.orchestration.analytics defines each field)."""

    total_tasks: int
    active_tasks: int
    completed_tasks: int
    failed_tasks: int
    completion_rate: float = Field(description="completed / total, 0..1")
    error_rate: float = Field(description="failed (error, blocked_by_failures) / total, 0..1")
    average_task_duration_seconds: float = Field(
        description="creation to entering complete or error, over such tasks"
    )
    average_step_duration_seconds: float = Field(
        description="handler run time reported by the worker, over step executions"
    )
    tasks_per_hour: float
    steps_per_hour: float = Field(description="step executions (worker results) per hour")
    system_health_score: float = Field(description="0..1, 1 is best")
    analysis_period_start: str
    calculated_at: str


class SlowStep(_Out):
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


class SlowTask(_Out):
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


class ResourceUtilization(_Out):
    database_pool_utilization: float = Field(description="0..1; 0 for SQLite (no pool)")
    system_health: Literal["healthy", "degraded", "unhealthy"]


class BottleneckAnalysis(_Out):
    slow_steps: list[SlowStep]
    slow_tasks: list[SlowTask]
    resource_utilization: ResourceUtilization
    recommendations: list[str]


# -- health -------------------------------------------------------------------------------


class HealthCheck(_Out):
    status: Literal["healthy", "degraded", "unhealthy", "unknown"]
    message: str | None = None
    duration_ms: float


class HealthResponse(_Out):
    status: str
    timestamp: str


class HealthDetail(_Out):
    status: str
    timestamp: str
    checks: dict[str, HealthCheck]
    info: JSONObject
