"""Registered templates: list, detail, and "can this process run it" (rest-api.md §3, §5).

Templates are read from the store, not from files, so every API process lists what any process
registered; each is shown resolved for this process's environment.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tasker.api import operations
from tasker.api.deps import ERROR_RESPONSES, TaskerDep, check_text, protected
from tasker.api.schemas import TemplateDetail, TemplateListResponse, TemplateValidation

__all__ = ["router"]

router = APIRouter(prefix="/v1/templates", tags=["templates"], responses=ERROR_RESPONSES)
JSONObject = dict[str, Any]


def _check_path(*values: str) -> None:
    for value in values:
        check_text(value, "template path", max_length=255)


@router.get("", response_model=TemplateListResponse, openapi_extra=protected("templates:read"))
def list_templates(
    app: TaskerDep, namespace: Annotated[str | None, Query(max_length=255)] = None
) -> JSONObject:
    """Registered templates, optionally of one namespace, with per-namespace counts."""
    check_text(namespace, "namespace", max_length=255)
    return operations.list_templates(app, namespace)


@router.get(
    "/{namespace}/{name}/{version}",
    response_model=TemplateDetail,
    openapi_extra=protected("templates:read"),
)
def get_template(namespace: str, name: str, version: str, app: TaskerDep) -> JSONObject:
    """One template with its stored configuration and step defaults."""
    _check_path(namespace, name, version)
    return operations.get_template(app, namespace, name, version)


@router.post(
    "/{namespace}/{name}/{version}/validate",
    response_model=TemplateValidation,
    openapi_extra=protected("templates:validate"),
)
def validate_template(namespace: str, name: str, version: str, app: TaskerDep) -> JSONObject:
    """Whether this process has a handler for every step of the template."""
    _check_path(namespace, name, version)
    return operations.validate_template(app, namespace, name, version)
