"""The REST API (rest-api.md): ``create_app(tasker, settings)`` gives an ASGI app for uvicorn.

``create_app`` needs the ``server`` extra (FastAPI, uvicorn, PyJWT) and is imported on first
use, so ``tasker.api.operations`` (what the operator CLI's direct mode runs) works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasker.api.settings import ApiSettings

if TYPE_CHECKING:
    from tasker.api.app import create_app

__all__ = ["ApiSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tasker.api.app import create_app

        return create_app
    raise AttributeError(f"module 'tasker.api' has no attribute {name!r}")
