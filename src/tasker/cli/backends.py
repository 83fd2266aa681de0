"""Where the operator commands get their answers: a tasker server, or the database directly.

Both backends answer with the JSON documents of rest-api.md §4, so a command prints the same
thing whichever way it was pointed: ``Remote`` goes through ``TaskerClient``; ``Direct`` runs
the same operations the server runs (``tasker.api.operations``), in this process.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, Protocol

from tasker.api import operations
from tasker.api.views import format_ts
from tasker.client import TaskerClient
from tasker.config import Settings
from tasker.domain.model import TaskRequest
from tasker.runtime import Tasker

__all__ = ["Backend", "Direct", "Remote", "open_backend"]

JSONObject = dict[str, Any]


class Backend(Protocol):
    """The operations the CLI needs, answered as JSON documents."""

    def create_task(self, request: TaskRequest) -> JSONObject: ...
    def get_task(self, task_uuid: str) -> JSONObject: ...
    def list_tasks(
        self, *, page: int, per_page: int, namespace: str | None, status: str | None
    ) -> JSONObject: ...
    def cancel_task(self, task_uuid: str) -> JSONObject: ...
    def list_steps(self, task_uuid: str) -> list[JSONObject]: ...
    def get_step(self, task_uuid: str, step_uuid: str) -> JSONObject: ...
    def step_audit(self, task_uuid: str, step_uuid: str) -> list[JSONObject]: ...
    def act_on_step(
        self,
        task_uuid: str,
        step_uuid: str,
        action: str,
        *,
        reason: str,
        by: str,
        result: Any,
        metadata: Any,
    ) -> JSONObject: ...
    def list_dlq(self, *, status: str | None, limit: int, offset: int) -> list[JSONObject]: ...
    def dlq_entry(self, task_uuid: str) -> JSONObject: ...
    def update_dlq(
        self, entry_uuid: str, *, status: str | None, notes: str | None, by: str | None
    ) -> JSONObject: ...
    def dlq_stats(self) -> list[JSONObject]: ...
    def performance(self, *, hours: int) -> JSONObject: ...
    def bottlenecks(self, *, limit: int, min_executions: int) -> JSONObject: ...
    def list_templates(self, namespace: str | None) -> JSONObject: ...
    def get_template(self, namespace: str, name: str, version: str) -> JSONObject: ...
    def health(self) -> JSONObject: ...
    def close(self) -> None: ...


def _doc(value: Any) -> JSONObject:
    """A client dataclass as the JSON document it was built from."""
    document: JSONObject = dataclasses.asdict(value)
    return document


def _docs(values: list[Any]) -> list[JSONObject]:
    return [_doc(v) for v in values]


class Remote:
    """Answers from a tasker server, through ``TaskerClient``."""

    def __init__(self, url: str, *, api_key: str | None, token: str | None) -> None:
        self.client = TaskerClient(
            url, api_key=api_key, token=token, initiator="tasker-cli", source_system="cli"
        )

    def create_task(self, request: TaskRequest) -> JSONObject:
        extra: JSONObject = {"tags": list(request.tags), "priority": request.priority}
        if request.idempotency_key is not None:
            extra["idempotency_key"] = request.idempotency_key
        return _doc(
            self.client.create_task(
                request.name,
                namespace=request.namespace,
                version=request.version,
                context=request.context,
                reason=request.reason,
                **extra,
            )
        )

    def get_task(self, task_uuid: str) -> JSONObject:
        return _doc(self.client.get_task(task_uuid))

    def list_tasks(
        self, *, page: int, per_page: int, namespace: str | None, status: str | None
    ) -> JSONObject:
        return _doc(
            self.client.list_tasks(
                limit=per_page, offset=(page - 1) * per_page, namespace=namespace, status=status
            )
        )

    def cancel_task(self, task_uuid: str) -> JSONObject:
        return _doc(self.client.cancel_task(task_uuid))

    def list_steps(self, task_uuid: str) -> list[JSONObject]:
        return _docs(self.client.list_task_steps(task_uuid))

    def get_step(self, task_uuid: str, step_uuid: str) -> JSONObject:
        return _doc(self.client.get_step(task_uuid, step_uuid))

    def step_audit(self, task_uuid: str, step_uuid: str) -> list[JSONObject]:
        return _docs(self.client.get_step_audit_history(task_uuid, step_uuid))

    def act_on_step(
        self,
        task_uuid: str,
        step_uuid: str,
        action: str,
        *,
        reason: str,
        by: str,
        result: Any,
        metadata: Any,
    ) -> JSONObject:
        return _doc(
            self.client.resolve_step(
                task_uuid, step_uuid, action, reason=reason, by=by, result=result, metadata=metadata
            )
        )

    def list_dlq(self, *, status: str | None, limit: int, offset: int) -> list[JSONObject]:
        return _docs(self.client.list_dlq(resolution_status=status, limit=limit, offset=offset))

    def dlq_entry(self, task_uuid: str) -> JSONObject:
        return _doc(self.client.get_dlq_entry(task_uuid))

    def update_dlq(
        self, entry_uuid: str, *, status: str | None, notes: str | None, by: str | None
    ) -> JSONObject:
        return self.client.update_dlq_entry(
            entry_uuid, resolution_status=status, resolution_notes=notes, resolved_by=by
        )

    def dlq_stats(self) -> list[JSONObject]:
        return _docs(self.client.dlq_stats())

    def performance(self, *, hours: int) -> JSONObject:
        return _doc(self.client.performance_metrics(hours=hours))

    def bottlenecks(self, *, limit: int, min_executions: int) -> JSONObject:
        return _doc(self.client.bottlenecks(limit=limit, min_executions=min_executions))

    def list_templates(self, namespace: str | None) -> JSONObject:
        return _doc(self.client.list_templates(namespace=namespace))

    def get_template(self, namespace: str, name: str, version: str) -> JSONObject:
        return _doc(self.client.get_template(namespace, name, version))

    def health(self) -> JSONObject:
        return _doc(self.client.health_check())

    def close(self) -> None:
        self.client.close()


class Direct:
    """Answers from the database, running the server's operations in this process."""

    def __init__(self, database_url: str | None) -> None:
        self.app = Tasker(settings=Settings.load({"database_url": database_url}))

    def create_task(self, request: TaskRequest) -> JSONObject:
        return operations.create_task(self.app, request)

    def get_task(self, task_uuid: str) -> JSONObject:
        return operations.get_task(self.app, task_uuid)

    def list_tasks(
        self, *, page: int, per_page: int, namespace: str | None, status: str | None
    ) -> JSONObject:
        return operations.list_tasks(
            self.app, page=page, per_page=per_page, namespace=namespace, status=status
        )

    def cancel_task(self, task_uuid: str) -> JSONObject:
        return operations.cancel_task(self.app, task_uuid)

    def list_steps(self, task_uuid: str) -> list[JSONObject]:
        return operations.list_steps(self.app, task_uuid)

    def get_step(self, task_uuid: str, step_uuid: str) -> JSONObject:
        return operations.get_step(self.app, task_uuid, step_uuid)

    def step_audit(self, task_uuid: str, step_uuid: str) -> list[JSONObject]:
        return operations.step_audit(self.app, task_uuid, step_uuid)

    def act_on_step(
        self,
        task_uuid: str,
        step_uuid: str,
        action: str,
        *,
        reason: str,
        by: str,
        result: Any,
        metadata: Any,
    ) -> JSONObject:
        return operations.act_on_step(
            self.app,
            task_uuid,
            step_uuid,
            action,
            reason=reason,
            by=by,
            result=result,
            metadata=metadata,
        )

    def list_dlq(self, *, status: str | None, limit: int, offset: int) -> list[JSONObject]:
        return operations.list_dlq(self.app, resolution_status=status, limit=limit, offset=offset)

    def dlq_entry(self, task_uuid: str) -> JSONObject:
        return operations.dlq_entry_for_task(self.app, task_uuid)

    def update_dlq(
        self, entry_uuid: str, *, status: str | None, notes: str | None, by: str | None
    ) -> JSONObject:
        return operations.update_dlq_entry(
            self.app, entry_uuid, resolution_status=status, resolution_notes=notes, resolved_by=by
        )

    def dlq_stats(self) -> list[JSONObject]:
        return operations.dlq_stats(self.app)

    def performance(self, *, hours: int) -> JSONObject:
        return operations.performance_metrics(self.app, hours)

    def bottlenecks(self, *, limit: int, min_executions: int) -> JSONObject:
        return operations.bottlenecks(self.app, limit=limit, min_executions=min_executions)

    def list_templates(self, namespace: str | None) -> JSONObject:
        return operations.list_templates(self.app, namespace)

    def get_template(self, namespace: str, name: str, version: str) -> JSONObject:
        return operations.get_template(self.app, namespace, name, version)

    def health(self) -> JSONObject:
        with self.app.store.read() as tx:  # the cheapest read the store offers
            tx.get_task("00000000-0000-0000-0000-000000000000")
        reachable = {"status": "healthy", "message": f"{self.app.store.backend} reachable"}
        return {
            "status": "ready",
            "timestamp": format_ts(datetime.now(UTC)),
            "checks": {"database": reachable},
            "info": None,
        }

    def close(self) -> None:
        self.app.close()


def open_backend(
    api_url: str | None, database_url: str | None, *, api_key: str | None, token: str | None
) -> Backend:
    """``Remote`` when a server URL is given (it wins over a database URL), else ``Direct``."""
    if api_url:
        return Remote(api_url, api_key=api_key, token=token)
    return Direct(database_url)
