"""Templates as orchestration sees them: registered in the store, resolved for one environment."""

from __future__ import annotations

import threading

from tasker.domain.template import (
    TaskTemplate,
    resolve_environment,
    template_from_dict,
    template_to_dict,
)
from tasker.errors import TemplateNotFound
from tasker.store.base import Transaction

__all__ = ["TemplateCache"]


class TemplateCache:
    """Resolved templates by ``named_task_uuid``, loaded from the store on first use.

    Any process may create tasks of a template another process registered; workers find the
    template of a step they claimed through this cache.
    """

    def __init__(self, environment: str) -> None:
        self.environment = environment
        self._by_uuid: dict[str, TaskTemplate] = {}
        self._by_key: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def register(self, tx: Transaction, template: TaskTemplate) -> str:
        """Store (upsert) a template and remember its resolved form; returns its uuid."""
        from datetime import UTC, datetime

        uuid = tx.upsert_named_task(
            template.namespace_name,
            template.name,
            template.version,
            template_to_dict(template),
            template.identity_strategy.value,
            datetime.now(UTC),
        )
        with self._lock:
            self._by_uuid[uuid] = resolve_environment(template, self.environment)
            self._by_key[template.key] = uuid
        return uuid

    def by_key(
        self, tx: Transaction, namespace: str, name: str, version: str
    ) -> tuple[str, TaskTemplate]:
        """The registered template ``namespace/name@version``.

        Raises:
            TemplateNotFound: nobody registered it.
        """
        uuid = self._by_key.get((namespace, name, version))
        if uuid is not None:
            return uuid, self._by_uuid[uuid]
        found = tx.find_named_task(namespace, name, version)
        if found is None:
            raise TemplateNotFound(
                f"template not found: {namespace}/{name}@{version} is not registered"
            )
        uuid, configuration = found
        template = self._remember(uuid, configuration)
        with self._lock:
            self._by_key[(namespace, name, version)] = uuid
        return uuid, template

    def by_uuid(self, tx: Transaction, named_task_uuid: str) -> TaskTemplate:
        """The template a task was created from."""
        template = self._by_uuid.get(named_task_uuid)
        if template is not None:
            return template
        configuration = tx.named_task_configuration(named_task_uuid)
        if configuration is None:
            raise TemplateNotFound(f"template {named_task_uuid} is not registered")
        return self._remember(named_task_uuid, configuration)

    def _remember(self, uuid: str, configuration: dict[str, object]) -> TaskTemplate:
        template = resolve_environment(template_from_dict(configuration), self.environment)
        with self._lock:
            self._by_uuid[uuid] = template
        return template
