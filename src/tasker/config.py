"""Settings: one frozen object; defaults < ``TASKER_*`` environment < explicit arguments (flags).

A bad value fails at load and names the key and where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tasker.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "TASKER_"
_ENVIRONMENTS = ("test", "development", "production")


class Settings(BaseModel):
    """Every knob of a tasker process (rest-api.md §7, reliability.md R10.3)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///./tasker.db"
    env: str = "development"
    template_path: tuple[str, ...] = ()
    handlers: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    concurrency: int = Field(default=4, ge=1, le=1000)
    claim_batch_max: int = Field(default=32, ge=1, le=1000)
    claim_batch_budget_ms: float = Field(default=2.0, ge=0)
    worker_id: str | None = None
    lease_timeout_s: float = Field(default=30.0, gt=0)
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    step_timeout_s: float = Field(default=30.0, gt=0)
    poll_interval_s: float = Field(default=0.5, gt=0)
    maintenance_interval_s: float = Field(default=0.25, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    jitter_enabled: bool = True
    max_result_bytes: int = Field(default=1_048_576, gt=0)
    staleness_check_interval_s: float = Field(default=300.0, ge=0)
    stale_waiting_for_dependencies_minutes: float = Field(default=60.0, gt=0)
    stale_waiting_for_retry_minutes: float = Field(default=30.0, gt=0)
    stale_steps_in_process_minutes: float = Field(default=30.0, gt=0)
    stale_max_lifetime_minutes: float = Field(default=1440.0, gt=0)
    db_pool_size: int | None = Field(default=None, ge=2, le=1000)
    log_level: str = "info"

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        if value not in _ENVIRONMENTS:
            raise ValueError(f"must be one of {', '.join(_ENVIRONMENTS)}")
        return value

    @field_validator("template_path", "handlers", "namespaces", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
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
            raise ConfigError(f"invalid setting {key} (from {source}): {error['msg']}") from None
