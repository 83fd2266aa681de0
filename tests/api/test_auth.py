"""Authentication and permissions (rest-api.md §2, reliability.md R9.1-R9.3).

Every protected route is probed with a key holding each permission: exactly the route's own
permission gets through (401 without credentials, 403 with the wrong permission). The route
table is checked against the OpenAPI document, so a new route cannot miss this matrix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tasker.api import ApiSettings, create_app
from tasker.api.settings import KNOWN_PERMISSIONS
from tasker.errors import ConfigError
from tasker.runtime import Tasker
from tests.api.conftest import MakeServer, Server, assert_envelope

NIL = "00000000-0000-0000-0000-000000000000"
STEP = f"/v1/tasks/{NIL}/workflow_steps/{NIL}"
TASK_BODY = {"name": "pipeline", "namespace": "ops", "version": "1.0.0", "context": {"value": 1}}
RESOLVE_BODY = {"action_type": "resolve_manually", "reason": "r"}

ROUTES: list[tuple[str, str, str, Any]] = [
    ("POST", "/v1/tasks", "tasks:create", TASK_BODY),
    ("POST", "/v1/tasks/batch", "tasks:create", {"tasks": [TASK_BODY]}),
    ("GET", "/v1/tasks", "tasks:list", None),
    ("GET", f"/v1/tasks/{NIL}", "tasks:read", None),
    ("GET", f"/v1/tasks/{NIL}/summary", "tasks:read", None),
    ("DELETE", f"/v1/tasks/{NIL}", "tasks:cancel", None),
    ("GET", f"/v1/tasks/{NIL}/workflow_steps", "steps:read", None),
    ("GET", STEP, "steps:read", None),
    ("GET", f"{STEP}/audit", "steps:read", None),
    ("PATCH", STEP, "steps:resolve", RESOLVE_BODY),
    ("GET", "/v1/templates", "templates:read", None),
    ("GET", "/v1/templates/ops/pipeline/1.0.0", "templates:read", None),
    ("POST", "/v1/templates/ops/pipeline/1.0.0/validate", "templates:validate", None),
    ("GET", "/v1/dlq", "dlq:read", None),
    ("GET", f"/v1/dlq/task/{NIL}", "dlq:read", None),
    ("GET", "/v1/dlq/investigation-queue", "dlq:read", None),
    ("GET", "/v1/dlq/staleness", "dlq:read", None),
    ("PATCH", f"/v1/dlq/entry/{NIL}", "dlq:update", {}),
    ("GET", "/v1/dlq/stats", "dlq:stats", None),
    ("GET", "/v1/analytics/performance", "system:analytics_read", None),
    ("GET", "/v1/analytics/bottlenecks", "system:analytics_read", None),
    ("GET", "/config", "system:config_read", None),
]
PERMISSIONS = sorted({permission for _, _, permission, _ in ROUTES})
PUBLIC = [
    "/health",
    "/health/live",
    "/health/ready",
    "/health/detailed",
    "/metrics",
    "/api-docs/openapi.json",
]


def key_for(permission: str) -> str:
    return f"test-key-{permission.replace(':', '-')}-0123456789"


ADMIN_KEY = "admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[bytes, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture
def secured(make_server: MakeServer, rsa_keys: tuple[bytes, bytes]) -> Server:
    keys = [{"key": key_for(p), "permissions": [p]} for p in PERMISSIONS]
    keys += [
        {"key": "tasks-wildcard-key-0123456789", "permissions": ["tasks:*"]},
        {"key": "no-permission-key-0123456789", "permissions": []},
    ]
    server: Server = make_server(
        auth_enabled="true",
        api_keys=keys,
        api_key=ADMIN_KEY,
        jwt_public_key=rsa_keys[1].decode(),
        config_endpoint_enabled=True,
    )
    return server


def call(
    server: Server, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=10)


def token(private_pem: bytes, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "ci-robot",
        "iss": "tasker-core",
        "aud": "tasker-api",
        "iat": now,
        "exp": now + 300,
        "permissions": ["tasks:read"],
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, private_pem, algorithm="RS256")


def test_route_table_covers_every_protected_route_of_the_openapi_document(
    secured: Server,
) -> None:
    document = httpx.get(secured.url + "/api-docs/openapi.json").json()
    declared = {
        (method.upper(), path, operation["x-permission"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "x-permission" in operation
    }
    probed = set()
    for method, path, permission, _ in ROUTES:
        template = next(
            p for m, p, perm in declared if m == method and perm == permission and _matches(p, path)
        )
        probed.add((method, template, permission))
    assert probed == declared


def _matches(template: str, path: str) -> bool:
    parts, actual = template.split("/"), path.split("/")
    return len(parts) == len(actual) and all(
        t == a or t.startswith("{") for t, a in zip(parts, actual, strict=True)
    )


@pytest.mark.parametrize("permission", PERMISSIONS)
def test_each_permission_opens_exactly_its_routes(secured: Server, permission: str) -> None:
    headers = {"X-API-Key": key_for(permission)}
    for method, path, required, body in ROUTES:
        response = call(secured, method, path, body, headers)
        if required == permission:
            assert response.status_code not in (401, 403), (method, path, response.text)
        else:
            error = assert_envelope(response, 403, "FORBIDDEN")
            assert error["details"] == {"required_permission": required}


def test_missing_and_invalid_credentials_are_401(secured: Server) -> None:
    for method, path, _, body in ROUTES:
        missing = call(secured, method, path, body, {})
        assert_envelope(missing, 401, "UNAUTHORIZED")
        assert missing.headers["x-auth-failure-reason"] == "missing_credentials"
        wrong = call(secured, method, path, body, {"X-API-Key": "not-a-key-0123456789"})
        assert_envelope(wrong, 401, "AUTHENTICATION_FAILED")
        assert "not-a-key" not in wrong.text


def test_public_routes_need_no_credentials(secured: Server) -> None:
    for path in PUBLIC:
        assert httpx.get(secured.url + path).status_code == 200, path


def test_authorization_is_decided_before_the_body_is_read(secured: Server) -> None:
    malformed = httpx.post(
        secured.url + "/v1/tasks", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_envelope(malformed, 401, "UNAUTHORIZED")
    oversized = httpx.post(
        secured.url + "/v1/tasks",
        content=b"x" * 2_000_000,
        headers={"content-type": "application/json", "X-API-Key": key_for("tasks:read")},
    )
    assert_envelope(oversized, 403, "FORBIDDEN")


def test_static_key_holds_every_permission_and_wildcards_cover_one_resource(
    secured: Server,
) -> None:
    for method, path, _, body in ROUTES:
        response = call(secured, method, path, body, {"X-API-Key": ADMIN_KEY})
        assert response.status_code not in (401, 403), (method, path)
    wildcard = {"X-API-Key": "tasks-wildcard-key-0123456789"}
    for method, path, required, body in ROUTES:
        response = call(secured, method, path, body, wildcard)
        allowed = response.status_code not in (401, 403)
        assert allowed == required.startswith("tasks:"), (method, path)
    nothing = call(secured, "GET", "/v1/tasks", None, {"X-API-Key": "no-permission-key-0123456789"})
    assert_envelope(nothing, 403, "FORBIDDEN")


def test_jwt_with_the_permission_is_accepted(
    secured: Server, rsa_keys: tuple[bytes, bytes]
) -> None:
    good = token(rsa_keys[0], permissions=["tasks:list"])
    response = call(secured, "GET", "/v1/tasks", None, {"Authorization": f"Bearer {good}"})
    assert response.status_code == 200
    denied = call(secured, "GET", "/v1/dlq", None, {"Authorization": f"Bearer {good}"})
    assert_envelope(denied, 403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 60}, "token_expired"),
        ({"iss": "someone-else"}, "invalid_token"),
        ({"aud": "another-api"}, "invalid_token"),
        ({"nbf": int(time.time()) + 3600}, "invalid_token"),
        ({"sub": None}, "invalid_token"),
        ({"permissions": ["tasks:list", "tasks:explode"]}, "unknown_permissions"),
        ({"permissions": "tasks:list"}, "invalid_token"),
    ],
)
def test_bad_tokens_are_401(
    secured: Server, rsa_keys: tuple[bytes, bytes], overrides: dict[str, Any], reason: str
) -> None:
    bad = token(rsa_keys[0], **overrides)
    response = call(secured, "GET", "/v1/tasks", None, {"Authorization": f"Bearer {bad}"})
    assert_envelope(response, 401, "AUTHENTICATION_FAILED")
    assert response.headers["x-auth-failure-reason"] == reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """A token HMAC-signed with ``secret`` (PyJWT refuses to use a PEM key as HMAC secret)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def test_forged_tokens_are_401(secured: Server, rsa_keys: tuple[bytes, bytes]) -> None:
    claims = {
        "sub": "x",
        "iss": "tasker-core",
        "aud": "tasker-api",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        "permissions": ["tasks:list"],
    }
    unsigned = jwt.encode(claims, "", algorithm="none")
    hmac_with_public_key = _hs256(claims, rsa_keys[1])  # the RS256 -> HS256 confusion
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong_signer = jwt.encode(claims, other_key, algorithm="RS256")
    for forged in (unsigned, hmac_with_public_key, wrong_signer, "not.a.jwt", "x"):
        response = call(secured, "GET", "/v1/tasks", None, {"Authorization": f"Bearer {forged}"})
        assert_envelope(response, 401, "AUTHENTICATION_FAILED")
    basic = call(secured, "GET", "/v1/tasks", None, {"Authorization": "Basic dTpw"})
    assert_envelope(basic, 401, "AUTHENTICATION_FAILED")


def test_bearer_token_is_checked_before_the_api_key(
    secured: Server, rsa_keys: tuple[bytes, bytes]
) -> None:
    expired = token(rsa_keys[0], exp=int(time.time()) - 60, permissions=["tasks:list"])
    headers = {"Authorization": f"Bearer {expired}", "X-API-Key": ADMIN_KEY}
    assert_envelope(call(secured, "GET", "/v1/tasks", None, headers), 401, "AUTHENTICATION_FAILED")


def test_auth_defaults_follow_the_bind_address(tmp_path: Path) -> None:
    assert ApiSettings(host="127.0.0.1").auth_active is False
    assert ApiSettings(host="::1").auth_active is False
    assert ApiSettings(host="0.0.0.0").auth_active is True
    assert ApiSettings(host="0.0.0.0", auth_enabled="false").auth_active is False
    assert ApiSettings(host="127.0.0.1", auth_enabled="true").auth_active is True
    app = Tasker(f"sqlite:///{tmp_path}/auth.db")
    try:
        with pytest.raises(ConfigError, match="no credential is configured"):
            create_app(app, ApiSettings(host="0.0.0.0"))
        with pytest.raises(ConfigError, match="not a PEM"):
            create_app(app, ApiSettings(auth_enabled="true", jwt_public_key="nope"))
        create_app(app, ApiSettings(host="0.0.0.0", auth_enabled="false"))  # explicit opt-out
    finally:
        app.close()


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"TASKER_JWT_ALLOWED_ALGORITHMS": "HS256"}, "jwt_allowed_algorithms"),
        ({"TASKER_JWT_ALLOWED_ALGORITHMS": "none"}, "jwt_allowed_algorithms"),
        ({"TASKER_API_KEYS": '[{"key": "k-0123456789abcdef", "permissions": ["*"]}]'}, "api_keys"),
        ({"TASKER_API_KEYS": "not json"}, "api_keys"),
        ({"TASKER_AUTH_ENABLED": "maybe"}, "auth_enabled"),
        ({"TASKER_API_KEY": "short"}, "api_key"),
    ],
)
def test_bad_auth_settings_fail_at_load_naming_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid setting {key} \\(from environment"):
        ApiSettings.load(environ=environ)


def test_every_permission_in_the_route_table_is_in_the_vocabulary() -> None:
    assert set(PERMISSIONS) <= KNOWN_PERMISSIONS
