"""The app factory: one FastAPI app over one ``Tasker`` runtime.

Layers, outermost first: CORS, request id + last-resort 500, request counting, authentication
(before any body is read), body limits, then the routes. The factory neither starts nor stops
the runtime: whoever built the ``Tasker`` (``tasker serve``, a test) owns its lifetime.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.middleware.cors import CORSMiddleware

import tasker
from tasker.api.auth import AuthMiddleware, build_authenticator, route_permission
from tasker.api.errors import install_error_handlers
from tasker.api.metrics import ApiMetrics
from tasker.api.middleware import (
    ASGIApp,
    BodyGuardMiddleware,
    Message,
    Receive,
    RequestContextMiddleware,
    Scope,
    Send,
)
from tasker.api.routes import analytics, dlq, health, metrics, steps, tasks, templates
from tasker.api.settings import ApiSettings
from tasker.runtime import Tasker

__all__ = ["create_app"]


class _CountRequests:
    """Count answered requests by method, route template and status (bounded label values)."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = str(getattr(route, "path", "unmatched"))
            self.metrics.inc(
                "tasker_api_requests_total",
                {"method": str(scope["method"]), "route": path, "status": str(status)},
            )


def create_app(app: Tasker, settings: ApiSettings | None = None) -> FastAPI:
    """Build the REST app serving ``app``.

    Args:
        app: the runtime whose store, templates and handlers the routes use.
        settings: bind address (for the ``auto`` auth decision), credentials and limits;
            default ``ApiSettings.load()``.

    Returns:
        An ASGI application (serve it with uvicorn).

    Raises:
        ConfigError: authentication is on without any credential configured, or a key is bad.
    """
    settings = settings or ApiSettings.load()
    authenticator = build_authenticator(settings)
    api_metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(fastapi_app: FastAPI) -> AsyncIterator[None]:
        fastapi_app.state.shutting_down = False
        fastapi_app.state.started_at = time.time()
        yield
        fastapi_app.state.shutting_down = True

    fastapi_app = FastAPI(
        title="tasker",
        version=tasker.__version__,
        description="Workflow orchestration: tasks, steps, templates and the dead letter queue.",
        openapi_url="/api-docs/openapi.json",
        docs_url="/api-docs/ui",
        redoc_url=None,
        lifespan=lifespan,
    )
    fastapi_app.state.tasker = app
    fastapi_app.state.api_settings = settings
    fastapi_app.state.metrics = api_metrics
    fastapi_app.state.shutting_down = False
    install_error_handlers(fastapi_app)
    routers = [m.router for m in (tasks, steps, templates, dlq, analytics, health, metrics)]
    if settings.config_endpoint_enabled:
        from tasker.api.routes import config

        routers.append(config.router)
    for router in routers:
        fastapi_app.include_router(router)
    # Matched against our own routers' routes: each APIRoute carries its full path and its
    # permission, whatever structure the framework builds when it includes a router.
    routes = [route for router in routers for route in router.routes]
    _document_security(fastapi_app)

    # add_middleware prepends: the last one added is the outermost.
    fastapi_app.add_middleware(
        BodyGuardMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )
    if authenticator is not None:
        fastapi_app.add_middleware(
            AuthMiddleware,
            authenticator=authenticator,
            permission_of=lambda scope: route_permission(routes, scope),
            metrics=api_metrics,
        )
    fastapi_app.add_middleware(_CountRequests, metrics=api_metrics)
    fastapi_app.add_middleware(RequestContextMiddleware)
    fastapi_app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    return fastapi_app


def _document_security(fastapi_app: FastAPI) -> None:
    """Name the two credential schemes in the OpenAPI document."""
    settings: ApiSettings = fastapi_app.state.api_settings

    def openapi() -> dict[str, Any]:
        if fastapi_app.openapi_schema:
            return fastapi_app.openapi_schema
        schema = get_openapi(
            title=fastapi_app.title,
            version=fastapi_app.version,
            description=fastapi_app.description,
            routes=fastapi_app.routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": settings.api_key_header},
            "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        }
        fastapi_app.openapi_schema = schema
        return schema

    fastapi_app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook
