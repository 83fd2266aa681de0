"""``GET /config``: the safe part of the configuration, only when enabled (rest-api.md §3, §4).

A whitelist: nothing here is a secret, a key, a URL or a path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

import tasker
from tasker.api.deps import ERROR_RESPONSES, TaskerDep, format_ts, now, protected
from tasker.api.settings import ApiSettings

__all__ = ["router"]

router = APIRouter(tags=["config"], responses=ERROR_RESPONSES)


@router.get("/config", openapi_extra=protected("system:config_read"))
def safe_config(request: Request, app: TaskerDep) -> dict[str, Any]:
    """Auth mode, key counts and engine knobs; never a secret or a connection string."""
    settings: ApiSettings = request.app.state.api_settings
    engine = app.settings
    return {
        "metadata": {
            "timestamp": format_ts(now()),
            "environment": engine.env,
            "version": tasker.__version__,
        },
        "auth": {
            "enabled": settings.auth_active,
            "verification_method": "public_key",
            "jwt_issuer": settings.jwt_issuer,
            "jwt_audience": settings.jwt_audience,
            "api_key_header": settings.api_key_header,
            "api_key_count": len(settings.api_keys) + (1 if settings.api_key else 0),
            "strict_validation": settings.strict_validation,
            "allowed_algorithms": list(settings.jwt_allowed_algorithms),
        },
        "circuit_breakers": {
            "enabled": False,
            "failure_threshold": 0,
            "timeout_seconds": 0,
            "success_threshold": 0,
        },
        "database_pools": {
            "web_api_pool_size": int(getattr(app.store, "pool_size", 1)),
            "web_api_max_connections": int(getattr(app.store, "pool_size", 1)),
        },
        "deployment_mode": "embedded",
        "messaging": {"backend": "database", "queues": []},
    }
