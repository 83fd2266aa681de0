"""Specialised functional decorators: decision, batch analyzer/worker and API handlers (§6.1)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tasker.errors import PermanentError
from tasker.worker.api_mixin import ApiHandler, APIMixin
from tasker.worker.batch import Batchable
from tasker.worker.batch_types import BatchAnalyzerOutcome, BatchWorkerContext, BatchWorkerOutcome
from tasker.worker.context import StepContext
from tasker.worker.decision import DecisionHandler
from tasker.worker.functional import depends_on, inputs
from tasker.worker.functional_special import (
    BatchConfig,
    Decision,
    api_handler,
    batch_analyzer,
    batch_worker,
    decision_handler,
)
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult


def _envelope(result: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "status": "completed", "result": result, "metadata": {}}


def _context(
    *,
    input_data: dict[str, Any] | None = None,
    deps: dict[str, Any] | None = None,
    step_inputs: dict[str, Any] | None = None,
) -> StepContext:
    return StepContext.model_validate(
        {
            "task_uuid": uuid.uuid4(),
            "step_uuid": uuid.uuid4(),
            "handler_name": "h",
            "input_data": input_data or {},
            "dependency_results": {k: _envelope(v) for k, v in (deps or {}).items()},
            "step_inputs": step_inputs or {},
        }
    )


def _run(func: Any, context: StepContext) -> StepHandlerResult:
    handler = func._handler_class()
    result = handler.call(context)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    assert isinstance(result, StepHandlerResult)
    return result


# -- decision ------------------------------------------------------------------------------------


@decision_handler("route_refund", version="2.0.0")
@depends_on(ticket="load_ticket")
def route_refund(ticket: dict[str, Any]) -> Decision:
    if ticket["amount"] > 100:
        return Decision.route(["agent_review"], amount=ticket["amount"])
    return Decision.route(["auto_refund"])


@decision_handler("maybe_route")
@inputs("mode")
async def maybe_route(mode: str | None) -> Any:
    if mode == "skip":
        return Decision.skip("", why="quiet")
    if mode == "dict":
        return {"plain": True}
    raise PermanentError("unknown mode")


def test_decision_handler_routes_with_routing_context() -> None:
    result = _run(route_refund, _context(deps={"load_ticket": {"amount": 420}}))
    assert result.result == {
        "decision_point_outcome": {"type": "create_steps", "step_names": ["agent_review"]},
        "routing_context": {"amount": 420},
    }
    assert result.metadata == {"decision_handler": "route_refund", "decision_version": "2.0.0"}
    small = _run(route_refund, _context(deps={"load_ticket": {"amount": 5}}))
    assert small.result == {
        "decision_point_outcome": {"type": "create_steps", "step_names": ["auto_refund"]}
    }


def test_decision_handler_class_is_a_decision_handler() -> None:
    cls = route_refund._handler_class  # type: ignore[attr-defined]  # set by the decorator
    assert issubclass(cls, DecisionHandler)
    assert (cls.handler_name, cls.handler_version, cls.__name__) == (
        "route_refund",
        "2.0.0",
        "route_refund",
    )
    assert cls().capabilities == ["process", "decision", "routing"]


def test_async_decision_skip_with_empty_reason_says_no_branches() -> None:
    result = _run(maybe_route, _context(input_data={"mode": "skip"}))
    assert result.result == {
        "decision_point_outcome": {"type": "no_branches"},
        "reason": "No branches",
        "routing_context": {"why": "quiet"},
    }


def test_decision_handler_other_returns_and_errors_follow_the_plain_rules() -> None:
    assert _run(maybe_route, _context(input_data={"mode": "dict"})).result == {"plain": True}
    failed = _run(maybe_route, _context(input_data={"mode": "nope"}))
    assert (failed.is_success, failed.error_type, failed.retryable) == (
        False,
        "permanent_error",
        False,
    )


def test_decorator_without_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match='decision_handler\\("my_step"\\)'):
        decision_handler(route_refund)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match="batch_worker"):
        batch_worker("")


# -- batch analyzer ------------------------------------------------------------------------------


@batch_analyzer("plan_reindex", worker_template="reindex_batch")
@inputs("count", "size")
def plan_reindex(count: int, size: int) -> BatchConfig:
    return BatchConfig(total_items=count, batch_size=size, metadata={"planner": "v1"})


@batch_analyzer("plan_explicit", worker_template="reindex_batch")
async def plan_explicit() -> BatchAnalyzerOutcome:
    return BatchAnalyzerOutcome.from_ranges([(0, 10), (10, 15)], total_items=15)


def test_batch_analyzer_turns_batch_config_into_create_batches() -> None:
    result = _run(plan_reindex, _context(input_data={"count": 1200, "size": 500}))
    assert result.result is not None
    outcome = result.result["batch_processing_outcome"]
    assert (outcome["type"], outcome["worker_template_name"], outcome["worker_count"]) == (
        "create_batches",
        "reindex_batch",
        3,
    )
    assert [c["batch_id"] for c in outcome["cursor_configs"]] == ["001", "002", "003"]
    assert outcome["cursor_configs"][2] == {
        "batch_id": "003",
        "start_cursor": 1000,
        "end_cursor": 1200,
        "batch_size": 200,
    }
    assert result.metadata == {"planner": "v1", "batch_analyzer": True}
    assert issubclass(plan_reindex._handler_class, Batchable)  # type: ignore[attr-defined]


def test_batch_analyzer_with_zero_items_returns_no_batches() -> None:
    result = _run(plan_reindex, _context(input_data={"count": 0, "size": 500}))
    assert result.result == {
        "batch_processing_outcome": {"type": "no_batches"},
        "reason": "empty_dataset",
    }
    assert result.metadata == {"planner": "v1", "batch_analyzer": True, "no_batches": True}


def test_batch_analyzer_with_a_bad_batch_size_fails_permanently() -> None:
    result = _run(plan_reindex, _context(input_data={"count": 10, "size": 0}))
    assert (result.is_success, result.error_type, result.retryable) == (False, "ValueError", False)
    assert "batch_size" in (result.error_message or "")


def test_async_batch_analyzer_accepts_an_explicit_outcome() -> None:
    result = _run(plan_explicit, _context())
    assert result.result is not None
    sizes = [c["batch_size"] for c in result.result["batch_processing_outcome"]["cursor_configs"]]
    assert sizes == [10, 5]
    assert result.result["batch_processing_outcome"]["worker_template_name"] == "reindex_batch"


# -- batch worker --------------------------------------------------------------------------------


@batch_worker("reindex_batch")
def reindex_batch(batch_context: BatchWorkerContext | None, context: StepContext) -> Any:
    if batch_context is None:
        return {"batch_context": None, "handler": context.handler_name}
    return {"range": [batch_context.start_cursor, batch_context.end_cursor]}


@batch_worker("sum_batch")
async def sum_batch(_batch_context: BatchWorkerContext) -> BatchWorkerOutcome:
    size = _batch_context.end_cursor - _batch_context.start_cursor
    return BatchWorkerOutcome(items_processed=size, items_succeeded=size, last_cursor=999)


WORKER_INPUTS = {
    "cursor": {"batch_id": "002", "start_cursor": 500, "end_cursor": 1000, "batch_size": 500},
    "batch_metadata": {"cursor_field": "id", "failure_strategy": "continue_on_failure"},
    "is_no_op": False,
}


def test_batch_worker_receives_its_batch_context() -> None:
    result = _run(reindex_batch, _context(step_inputs=WORKER_INPUTS))
    assert result.result == {"range": [500, 1000]}
    assert result.metadata == {}


def test_batch_worker_outside_a_batch_gets_none() -> None:
    result = _run(reindex_batch, _context())
    assert result.result == {"batch_context": None, "handler": "h"}


def test_async_batch_worker_outcome_becomes_batch_worker_success() -> None:
    result = _run(sum_batch, _context(step_inputs=WORKER_INPUTS))
    assert result.result == {
        "items_processed": 500,
        "items_succeeded": 500,
        "items_failed": 0,
        "items_skipped": 0,
        "last_cursor": 999,
        "batch_metadata": {},
    }
    assert result.metadata == {"batch_worker": True}


# -- API -----------------------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        payload = json.dumps({"path": self.path, "key": self.headers.get("X-Key")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def base_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_api_handler_injects_the_handler_with_configured_client(base_url: str) -> None:
    @api_handler("fetch_user", base_url=base_url, timeout=4.0, default_headers={"X-Key": "k9"})
    @inputs("user_id")
    def fetch_user(user_id: int, api: Any) -> StepHandlerResult:
        try:
            return api.api_success(api.get(f"/users/{user_id}"))  # type: ignore[no-any-return]
        finally:
            api.close()

    cls = fetch_user._handler_class  # type: ignore[attr-defined]  # set by the decorator
    assert issubclass(cls, ApiHandler)
    assert (cls.base_url, cls.default_timeout, cls.default_headers) == (
        base_url,
        4.0,
        {"X-Key": "k9"},
    )
    assert APIMixin.base_url == ""  # the settings went to the generated class only
    result = _run(fetch_user, _context(input_data={"user_id": 7}))
    assert result.result == {"path": "/users/7", "key": "k9"}
    assert result.metadata["status_code"] == 200


def test_api_handler_plain_return_is_wrapped(base_url: str) -> None:
    @api_handler("ping", base_url=base_url)
    def ping(api: Any) -> dict[str, Any]:
        return {"same_instance": isinstance(api, StepHandler), "url": api.base_url}

    assert _run(ping, _context()).result == {"same_instance": True, "url": base_url}


# -- compatibility paths (python-api.md §1) ------------------------------------------------------


def test_compat_paths_export_the_specialised_names() -> None:
    import tasker.batch_processing
    import tasker.batch_processing.batchable
    import tasker.step_handler
    import tasker.step_handler.api
    import tasker.step_handler.decision
    import tasker.step_handler.functional
    import tasker.step_handler.mixins
    import tasker.step_handler.mixins.api
    import tasker.step_handler.mixins.decision
    import tasker.types

    functional = {"decision_handler", "batch_analyzer", "batch_worker", "api_handler"}
    functional |= {"Decision", "BatchConfig"}
    assert functional <= set(tasker.step_handler.functional.__all__)
    assert functional | {"ApiHandler", "ApiResponse", "DecisionHandler", "mixins"} <= set(
        tasker.step_handler.__all__
    )
    assert set(tasker.step_handler.mixins.__all__) == {"APIMixin", "ApiResponse", "DecisionMixin"}
    assert set(tasker.batch_processing.__all__) == {
        "Batchable",
        "BatchWorkerConfig",
        "BatchAggregationScenario",
    }
    assert {
        "DecisionType", "DecisionPointOutcome", "CursorConfig", "BatchAnalyzerOutcome",
        "BatchWorkerContext", "BatchWorkerOutcome", "FailureStrategy", "RustCursorConfig",
        "BatchMetadata", "RustBatchWorkerInputs", "NoBatchesOutcome", "CreateBatchesOutcome",
        "no_batches", "create_batches", "BatchAggregationResult", "aggregate_batch_results",
        "StepError", "StepExecutionResult",
    } <= set(tasker.types.__all__)  # fmt: skip
    assert tasker.step_handler.functional.batch_worker is batch_worker
    assert tasker.step_handler.api.ApiHandler is ApiHandler
    assert tasker.step_handler.decision.DecisionHandler is DecisionHandler
    assert tasker.step_handler.mixins.api.APIMixin is APIMixin
    assert tasker.step_handler.mixins.decision.DecisionMixin.__name__ == "DecisionMixin"
    assert tasker.batch_processing.batchable.Batchable is Batchable
