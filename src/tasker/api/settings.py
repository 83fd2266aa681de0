"""Settings of the HTTP server: bind address, authentication and request limits.

Kept apart from ``tasker.config.Settings`` (the engine's knobs) so that a process that never
serves HTTP never sees them; loaded from ``TASKER_*`` variables the same way, so a bad value fails
at start and names the key and where it came from (STYLE.md §8).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tasker.config import ENV_PREFIX
from tasker.errors import ConfigError

__all__ = ["KNOWN_PERMISSIONS", "ApiKey", "ApiSettings", "is_loopback"]

KNOWN_PERMISSIONS = frozenset(
    {
        "tasks:create",
        "tasks:read",
        "tasks:list",
        "tasks:cancel",
        "tasks:context_read",
        "steps:read",
        "steps:resolve",
        "dlq:read",
        "dlq:update",
        "dlq:stats",
        "templates:read",
        "templates:validate",
        "system:config_read",
        "system:analytics_read",
        "system:handlers_read",
        "worker:config_read",
        "worker:templates_read",
    }
)
"""The permission vocabulary of rest-api.md §2."""

_RESOURCES = frozenset(p.split(":", 1)[0] for p in KNOWN_PERMISSIONS)
# Asymmetric algorithms only: an HMAC algorithm would let anyone holding the *public* key sign
# tokens (the classic RS256 -> HS256 confusion), and "none" signs nothing (reliability.md R9.1).
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def is_known_permission(permission: str) -> bool:
    """Whether ``permission`` is in the vocabulary, or is a ``resource:*`` wildcard of it."""
    if permission in KNOWN_PERMISSIONS:
        return True
    resource, _, action = permission.partition(":")
    return action == "*" and resource in _RESOURCES


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ApiKey(BaseModel):
    """One API key and what it may do (``[[auth.api_keys]]`` of the original)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=16)
    permissions: tuple[str, ...] = ()
    description: str = ""

    @field_validator("permissions")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if not is_known_permission(p)]
        if unknown:
            raise ValueError(f"unknown permissions {unknown} (a bare '*' is not accepted)")
        return value


class ApiSettings(BaseModel):
    """Every knob of the REST server (rest-api.md §2, §7; reliability.md R9).

    ``api_key`` is the single static key: it grants every permission, so keep it for the
    operator; give applications ``api_keys`` entries with only the permissions they need.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    auth_enabled: Literal["auto", "true", "false"] = "auto"
    api_key_header: str = "X-API-Key"
    api_key: str | None = Field(default=None, min_length=16)
    api_keys: tuple[ApiKey, ...] = ()
    jwt_public_key: str | None = None
    jwt_public_key_path: Path | None = None
    jwt_issuer: str = "tasker-core"
    jwt_audience: str = "tasker-api"
    jwt_allowed_algorithms: tuple[str, ...] = ("RS256",)
    permissions_claim: str = "permissions"
    strict_validation: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_json_depth: int = Field(default=64, ge=1, le=1000)
    config_endpoint_enabled: bool = False

    @field_validator("auth_enabled", mode="before")
    @classmethod
    def _auth_mode(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            lowered = value.strip().lower()
            aliases = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false"}
            return aliases.get(lowered, "false" if lowered == "off" else lowered)
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"not a JSON list of {{key, permissions}} objects: {exc}"
                ) from None
        return value

    @field_validator("jwt_allowed_algorithms", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("jwt_allowed_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [a for a in value if a not in _ASYMMETRIC]
        if refused or not value:
            raise ValueError(
                f"only asymmetric algorithms are accepted ({', '.join(sorted(_ASYMMETRIC))});"
                f" refused: {refused or 'an empty list'}"
            )
        return value

    @property
    def auth_active(self) -> bool:
        """Whether requests to protected routes need credentials (R9.3)."""
        if self.auth_enabled == "auto":
            return not is_loopback(self.host)
        return self.auth_enabled == "true"

    def public_key(self) -> str | None:
        """The JWT verification key, read from ``jwt_public_key`` or its path.

        Raises:
            ConfigError: the key file cannot be read.
        """
        if self.jwt_public_key:
            return self.jwt_public_key
        if self.jwt_public_key_path is None:
            return None
        try:
            return self.jwt_public_key_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"invalid setting jwt_public_key_path: cannot read {self.jwt_public_key_path}"
                f" ({exc.strerror})"
            ) from None

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> ApiSettings:
        """Build settings from ``TASKER_*`` variables and explicit overrides (``None`` = unset).

        Raises:
            ConfigError: a value is invalid; the message names the key and its source.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in cls.model_fields:
            env_name = ENV_PREFIX + name.upper()
            if env_name in environ:
                values[name] = environ[env_name]
                sources[name] = f"environment variable {env_name}"
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
                sources[name] = "argument"
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else "?"
            source = sources.get(key, "default")
            # Never echo the value: it may be a key.
            raise ConfigError(f"invalid setting {key} (from {source}): {error['msg']}") from None
