"""HTTP-calling handlers: an httpx client plus status-aware results (python-api.md §5.1).

The point of the mixin is the failure mapping: a handler that returns ``api_failure(response)``
gets an ``error_type`` and ``retryable`` flag chosen from the HTTP status, so a 503 is retried
and a 404 is not, without each handler re-deciding.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx

from tasker.worker.handlers import StepHandler

if TYPE_CHECKING:
    from tasker.worker.results import StepHandlerResult

__all__ = ["APIMixin", "ApiHandler", "ApiResponse", "classify_status"]

# status -> (error_type, retryable); statuses not listed fall back by class (classify_status).
_STATUS_TABLE: dict[int, tuple[str, bool]] = {
    400: ("bad_request", False),
    401: ("unauthorized", False),
    403: ("forbidden", False),
    404: ("not_found", False),
    405: ("method_not_allowed", False),
    408: ("request_timeout", True),
    409: ("conflict", False),
    410: ("gone", False),
    422: ("unprocessable_entity", False),
    429: ("rate_limited", True),
    500: ("internal_server_error", True),
    502: ("bad_gateway", True),
    503: ("service_unavailable", True),
    504: ("gateway_timeout", True),
}

_MESSAGE_KEYS = ("error", "message", "detail", "error_message", "msg")

# Retry-After that is present but not a non-negative integer (e.g. an HTTP date).
_DEFAULT_RETRY_AFTER_S = 60


def classify_status(status_code: int) -> tuple[str, bool]:
    """Map an HTTP status to ``(error_type, retryable)`` per the table of python-api.md §5.1.

    Args:
        status_code: the response status.

    Returns:
        The error type and whether a retry may succeed; unlisted 4xx/5xx are
        ``client_error`` / ``server_error`` and anything else ``http_error``, none retryable.
    """
    if status_code in _STATUS_TABLE:
        return _STATUS_TABLE[status_code]
    if 400 <= status_code < 500:
        return "client_error", False
    if 500 <= status_code < 600:
        return "server_error", False
    return "http_error", False


class ApiResponse:
    """An httpx response with its body parsed once and the status classified."""

    def __init__(self, response: httpx.Response, body: Any = None) -> None:
        """Wrap ``response``; ``body`` overrides parsing when given.

        Args:
            response: the httpx response.
            body: an already parsed body, if the caller has one.
        """
        self.status_code: int = response.status_code
        self.headers: dict[str, str] = dict(response.headers)
        self.raw_response: httpx.Response = response
        self.body: Any = body if body is not None else _parse_body(response)

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    @property
    def is_client_error(self) -> bool:
        """4xx."""
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        """5xx."""
        return 500 <= self.status_code < 600

    @property
    def is_retryable(self) -> bool:
        """Whether the status is one a retry may fix (408, 429, 500, 502, 503, 504)."""
        return classify_status(self.status_code)[1]

    @property
    def retry_after(self) -> int | None:
        """``Retry-After`` in seconds; ``None`` if absent, 60 if not a non-negative integer."""
        raw = next((v for k, v in self.headers.items() if k.lower() == "retry-after"), None)
        if raw is None:
            return None
        text = raw.strip()
        return int(text) if text.isascii() and text.isdigit() else _DEFAULT_RETRY_AFTER_S

    def to_dict(self) -> dict[str, Any]:
        """``{status_code, headers, body}`` for a step result."""
        return {"status_code": self.status_code, "headers": self.headers, "body": self.body}

    def __repr__(self) -> str:
        return f"ApiResponse(status_code={self.status_code})"


def _parse_body(response: httpx.Response) -> Any:
    """JSON when the content type says so and it parses; the text otherwise."""
    if "application/json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            return response.text
    return response.text


def _error_detail(body: Any) -> str | None:
    """The first string under a conventional error key, or its nested ``message``."""
    if not isinstance(body, dict):
        return None
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            nested: str = value["message"]
            return nested
    return None


def _reason_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "HTTP Error"


class APIMixin:
    """HTTP helpers for step handlers; combine with ``StepHandler`` in either order.

    Configure with class attributes ``base_url``, ``default_timeout`` (seconds) and
    ``default_headers``. The client is created on first use; handler instances live for one
    execution, so each execution gets its own client (``close()`` releases it early).
    """

    base_url: str = ""
    default_timeout: float = 30.0
    default_headers: dict[str, str] = {}  # noqa: RUF012 - class-level default, read-only by convention

    _api_client: httpx.Client | None = None

    if TYPE_CHECKING:
        # Provided by StepHandler; declared so the helpers type-check inside the mixin.
        def success(
            self,
            result: dict[str, Any] | None = None,
            metadata: dict[str, Any] | None = None,
        ) -> StepHandlerResult: ...

        def failure(
            self,
            message: str,
            error_type: str = "handler_error",
            retryable: bool = True,
            metadata: dict[str, Any] | None = None,
            error_code: str | None = None,
        ) -> StepHandlerResult: ...

    @property
    def api_capabilities(self) -> list[str]:
        """Capabilities an API handler adds to ``StepHandler.capabilities``."""
        return ["http", "api"]

    @property
    def client(self) -> httpx.Client:
        """The handler's httpx client, built on first access from the class settings."""
        if self._api_client is None:
            self._api_client = httpx.Client(
                base_url=self.base_url,
                timeout=self.default_timeout,
                headers=dict(self.default_headers),
            )
        return self._api_client

    def close(self) -> None:
        """Close the client, if one was created; the next request opens a new one."""
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None

    def __del__(self) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        """Send any request; transport errors (``httpx.ConnectError``, ...) propagate.

        Args:
            method: HTTP method.
            path: path relative to ``base_url`` (or an absolute URL).
            **kwargs: passed to ``httpx.Client.request``.

        Returns:
            The wrapped response, whatever its status.
        """
        return ApiResponse(self.client.request(method, path, **kwargs))

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ApiResponse:
        """GET ``path`` with query ``params``."""
        return self.request("GET", path, params=params, headers=headers, **kwargs)

    def post(
        self,
        path: str,
        json: Any = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ApiResponse:
        """POST a JSON (``json``) or form (``data``) body."""
        return self.request("POST", path, json=json, data=data, headers=headers, **kwargs)

    def put(
        self,
        path: str,
        json: Any = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ApiResponse:
        """PUT a JSON (``json``) or form (``data``) body."""
        return self.request("PUT", path, json=json, data=data, headers=headers, **kwargs)

    def patch(
        self,
        path: str,
        json: Any = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ApiResponse:
        """PATCH a JSON (``json``) or form (``data``) body."""
        return self.request("PATCH", path, json=json, data=data, headers=headers, **kwargs)

    def delete(
        self, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> ApiResponse:
        """DELETE ``path``."""
        return self.request("DELETE", path, headers=headers, **kwargs)

    def api_success(
        self,
        response: ApiResponse,
        result: dict[str, Any] | None = None,
        include_response: bool = True,
    ) -> StepHandlerResult:
        """Succeed with the response body (or ``result``).

        Args:
            response: the response.
            result: the step result; defaults to the body if it is a dict, else
                ``{"data": body}``.
            include_response: put ``status_code`` and ``headers`` in the metadata.

        Returns:
            The success.
        """
        if result is None:
            result = response.body if isinstance(response.body, dict) else {"data": response.body}
        metadata: dict[str, Any] = {}
        if include_response:
            metadata = {"status_code": response.status_code, "headers": response.headers}
        return self.success(result, metadata=metadata)

    def api_failure(self, response: ApiResponse, message: str | None = None) -> StepHandlerResult:
        """Fail with ``error_type`` and ``retryable`` chosen from the status.

        Args:
            response: the (unsuccessful) response.
            message: overrides ``"HTTP <code>: <detail>"``, where detail comes from the body's
                ``error``/``message``/``detail``/``error_message``/``msg`` or the reason phrase.

        Returns:
            The failure; metadata holds ``status_code``, ``headers``, ``retry_after_seconds``
            when the server sent ``Retry-After``, and ``response_body`` when it is not empty.
        """
        error_type, retryable = classify_status(response.status_code)
        if message is None:
            detail = _error_detail(response.body) or _reason_phrase(response.status_code)
            message = f"HTTP {response.status_code}: {detail}"
        metadata: dict[str, Any] = {
            "status_code": response.status_code,
            "headers": response.headers,
        }
        if response.retry_after is not None:
            metadata["retry_after_seconds"] = response.retry_after
        if response.body:
            metadata["response_body"] = response.body
        return self.failure(message, error_type=error_type, retryable=retryable, metadata=metadata)

    def connection_error(self, exc: BaseException, context: str | None = None) -> StepHandlerResult:
        """Retryable failure for a connection that could not be made or was dropped.

        Args:
            exc: the transport exception.
            context: what was being done, e.g. ``"fetching user"``.

        Returns:
            The failure, ``error_type "connection_error"``.
        """
        where = f" while {context}" if context else ""
        return self.failure(
            f"Connection error{where}: {exc}",
            error_type="connection_error",
            retryable=True,
            metadata={"exception_type": type(exc).__name__},
        )

    def timeout_error(self, exc: BaseException, context: str | None = None) -> StepHandlerResult:
        """Retryable failure for a request that timed out.

        Args:
            exc: the timeout exception.
            context: what was being done.

        Returns:
            The failure, ``error_type "timeout"``.
        """
        where = f" while {context}" if context else ""
        return self.failure(
            f"Request timeout{where}: {exc}",
            error_type="timeout",
            retryable=True,
            metadata={"exception_type": type(exc).__name__},
        )


class ApiHandler(APIMixin, StepHandler):
    """Back-compat base: ``APIMixin`` + ``StepHandler``; subclasses implement ``call``."""

    @property
    def capabilities(self) -> list[str]:
        """``StepHandler`` capabilities plus ``http`` and ``api``."""
        return [*super().capabilities, *self.api_capabilities]
