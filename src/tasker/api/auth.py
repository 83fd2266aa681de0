"""Who is calling and what they may do: API keys, RS256 JWTs, ``resource:action`` permissions.

Decided in an ASGI layer before any body is read (reliability.md R9.2): the route a request
would reach is found by the router's own matching, and the permission it needs is the
``x-permission`` entry each protected route declares (so the OpenAPI document shows it too).
Missing, malformed, expired or unknown credentials are 401; a known caller without the
permission is 403. Keys are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match

from tasker.api.errors import error_response
from tasker.api.metrics import ApiMetrics
from tasker.api.middleware import ASGIApp, Receive, Scope, Send, header
from tasker.api.settings import KNOWN_PERMISSIONS, ApiSettings, is_known_permission, is_loopback
from tasker.errors import ConfigError

__all__ = [
    "PERMISSION_KEY",
    "AuthFailure",
    "AuthMiddleware",
    "Authenticator",
    "Principal",
    "build_authenticator",
    "has_permission",
    "route_permission",
]

log = logging.getLogger("tasker.api.auth")

PERMISSION_KEY = "x-permission"
"""The ``openapi_extra`` key a protected route names its permission under."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    subject: str
    permissions: frozenset[str]
    method: str


class AuthFailure(Exception):
    """Credentials were missing or refused; ``reason`` goes to ``x-auth-failure-reason``."""

    def __init__(self, code: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


def has_permission(grants: Iterable[str], required: str) -> bool:
    """Whether a grant equals ``required`` or is its ``resource:*``; a bare ``*`` grants nothing."""
    resource = required.split(":", 1)[0]
    return any(g == required or g == f"{resource}:*" for g in grants)


@dataclass(frozen=True, slots=True)
class _Key:
    secret: bytes
    permissions: frozenset[str]
    label: str


class Authenticator:
    """Checks the credentials of one request against the configured keys and JWT key."""

    def __init__(self, settings: ApiSettings, keys: Sequence[_Key], jwt_key: Any) -> None:
        self.settings = settings
        self._keys = tuple(keys)
        self._jwt_key = jwt_key
        self.api_key_header = settings.api_key_header.lower().encode("latin-1")

    def authenticate(self, scope: Scope) -> Principal:
        """The caller of this request.

        Raises:
            AuthFailure: no credentials, or credentials that do not check out.
        """
        authorization = header(scope, b"authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthFailure(
                    "AUTHENTICATION_FAILED",
                    "Authorization header must be 'Bearer <token>'",
                    "malformed_authorization",
                )
            return self._from_jwt(token.strip())
        api_key = header(scope, self.api_key_header)
        if api_key is not None:
            return self._from_api_key(api_key)
        raise AuthFailure(
            "UNAUTHORIZED",
            f"Authentication required: send 'Authorization: Bearer <JWT>' or the"
            f" {self.settings.api_key_header} header",
            "missing_credentials",
        )

    def _from_api_key(self, offered: str) -> Principal:
        candidate = offered.encode("utf-8", "surrogateescape")
        found: _Key | None = None
        for key in self._keys:  # compare against every key: the time does not tell which matched
            if hmac.compare_digest(candidate, key.secret) and found is None:
                found = key
        if found is None:
            raise AuthFailure("AUTHENTICATION_FAILED", "Invalid API key", "invalid_api_key")
        return Principal(found.label, found.permissions, "api_key")

    def _from_jwt(self, token: str) -> Principal:
        if self._jwt_key is None:
            raise AuthFailure(
                "AUTHENTICATION_FAILED",
                "Bearer tokens are not accepted: no JWT public key is configured",
                "jwt_not_configured",
            )
        import jwt

        s = self.settings
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=list(s.jwt_allowed_algorithms),
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure(
                "AUTHENTICATION_FAILED", "Token has expired", "token_expired"
            ) from None
        except jwt.PyJWTError:
            raise AuthFailure(
                "AUTHENTICATION_FAILED",
                "Invalid token (signature, algorithm, issuer, audience or claims)",
                "invalid_token",
            ) from None
        granted = claims.get(s.permissions_claim, [])
        if not isinstance(granted, list) or not all(isinstance(p, str) for p in granted):
            raise AuthFailure(
                "AUTHENTICATION_FAILED",
                f"Token claim {s.permissions_claim!r} must be a list of strings",
                "invalid_token",
            )
        unknown = [p for p in granted if not is_known_permission(p)]
        if unknown and s.strict_validation:
            raise AuthFailure(
                "AUTHENTICATION_FAILED", "Token lists unknown permissions", "unknown_permissions"
            )
        return Principal(str(claims["sub"]), frozenset(granted), "jwt")


def _load_jwt_key(settings: ApiSettings) -> Any:
    pem = settings.public_key()
    if pem is None:
        return None
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "JWT authentication needs PyJWT and cryptography: install tasker[server]"
        ) from None
    try:
        return load_pem_public_key(pem.encode("utf-8"))
    except ValueError:
        raise ConfigError("invalid setting jwt_public_key: not a PEM-encoded public key") from None


def build_authenticator(settings: ApiSettings) -> Authenticator | None:
    """The authenticator the settings call for, or ``None`` when auth is off.

    Raises:
        ConfigError: auth is on but no API key and no JWT key is configured, or a key is bad.
    """
    if not settings.auth_active:
        if not is_loopback(settings.host):  # only the explicit opt-out gets here (R9.3)
            log.warning(
                "authentication is disabled on a non-loopback address",
                extra={"host": settings.host},
            )
        return None
    keys = [
        _Key(k.key.encode("utf-8"), frozenset(k.permissions), k.description or f"api-key-{i}")
        for i, k in enumerate(settings.api_keys, 1)
    ]
    if settings.api_key:
        keys.append(_Key(settings.api_key.encode("utf-8"), KNOWN_PERMISSIONS, "static-api-key"))
    jwt_key = _load_jwt_key(settings)
    if not keys and jwt_key is None:
        raise ConfigError(
            f"authentication is on (auth_enabled={settings.auth_enabled}, host {settings.host})"
            " but no credential is configured: set TASKER_API_KEY, TASKER_API_KEYS or"
            " TASKER_JWT_PUBLIC_KEY[_PATH], or listen on 127.0.0.1"
        )
    if jwt_key is not None:
        try:
            import jwt  # noqa: F401 - fail at start, not at the first request
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ConfigError("JWT authentication needs PyJWT: install tasker[server]") from None
    return Authenticator(settings, keys, jwt_key)


def route_permission(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The permission the route this request reaches requires (``None``: public or no route)."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            extra = getattr(route, "openapi_extra", None) or {}
            permission = extra.get(PERMISSION_KEY)
            return str(permission) if permission else None
    return None


class AuthMiddleware:
    """Refuse requests to protected routes without the route's permission."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        permission_of: Callable[[Scope], str | None],
        metrics: ApiMetrics,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.permission_of = permission_of
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        required = self.permission_of(scope)
        if required is None:
            await self.app(scope, receive, send)
            return
        request_id = str(scope.get("state", {}).get("request_id", ""))
        try:
            principal = self.authenticator.authenticate(scope)
        except AuthFailure as failure:
            self.metrics.inc("tasker_auth_failures_total", {"reason": failure.reason})
            log.info("request refused", extra={"request_id": request_id, "reason": failure.reason})
            await error_response(
                401,
                failure.code,
                failure.message,
                request_id,
                headers={
                    "WWW-Authenticate": "Bearer",
                    "x-auth-failure-reason": failure.reason,
                    "x-auth-failure-severity": "warning",
                },
            )(scope, receive, send)
            return
        self.metrics.inc("tasker_auth_requests_total", {"method": principal.method})
        if not has_permission(principal.permissions, required):
            self.metrics.inc("tasker_permission_denials_total", {"permission": required})
            await error_response(
                403,
                "FORBIDDEN",
                f"Permission {required} is required",
                request_id,
                details={"required_permission": required},
            )(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
