"""RFC 9457 problem details: the one error type every layer of the kit renders.

Each layer that rejects a request calls :func:`write_problem_details` itself, so every
layer works alone; there is no shared error middleware a layer depends on. The body is
``application/problem+json``, or OpenAI's ``{"error": {...}}`` on the routes marked as
OpenAI-compatible (see :mod:`asgi_kit.errors.openai`): the choice is made here, once, for
every layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from asgi_kit._asgi.context import get_request_id, get_trace_ids, scope_request_id
from asgi_kit._asgi.exceptions import AsgiKitError
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors.openai import (
    OPENAI_CONTENT_TYPE,
    ErrorFormat,
    encode_openai_error,
    error_format,
    openai_error,
)

PROBLEM_CONTENT_TYPE: Final = b"application/problem+json"
STANDARD_MEMBERS: Final = frozenset({"type", "title", "status", "detail", "instance"})

HeaderItems = Mapping[str, str] | Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]]


class ProblemDetails(BaseModel):
    """An RFC 9457 problem. Unknown keyword arguments become extension members.

    Extension members can never override the standard members: they are serialised first
    and the standard ones written over them.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None

    @field_validator("title")
    @classmethod
    def _title_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("title must not be empty")
        return value

    @property
    def extensions(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})

    def with_extensions(self, **extensions: Any) -> ProblemDetails:
        """A copy with more extension members (standard member names are ignored)."""
        merged = {**self.extensions, **{k: v for k, v in extensions.items() if k not in STANDARD_MEMBERS}}
        return ProblemDetails(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=self.instance,
            **merged,
        )

    def with_detail(self, detail: str | None) -> ProblemDetails:
        return ProblemDetails(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=detail,
            instance=self.instance,
            **self.extensions,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: extensions first, then the standard members over them."""
        body: dict[str, Any] = {k: v for k, v in self.extensions.items() if k not in STANDARD_MEMBERS}
        body["type"] = self.type
        body["title"] = self.title
        body["status"] = self.status
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        return body


def new_problem_details(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    type: str = "about:blank",
    instance: str | None = None,
    **extensions: Any,
) -> ProblemDetails:
    """Build a problem; ``title`` defaults to the status phrase (``"Not Found"``)."""
    if title is None:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
    clean = {k: v for k, v in extensions.items() if k not in STANDARD_MEMBERS}
    return ProblemDetails(type=type, title=title, status=status, detail=detail, instance=instance, **clean)


BAD_REQUEST: Final = new_problem_details(400, "Bad Request")
UNAUTHORIZED: Final = new_problem_details(401, "Unauthorized", "Valid credentials are required")
FORBIDDEN: Final = new_problem_details(403, "Forbidden", "You do not have permission to perform this action")
NOT_FOUND: Final = new_problem_details(404, "Not Found")
METHOD_NOT_ALLOWED: Final = new_problem_details(405, "Method Not Allowed")
PAYLOAD_TOO_LARGE: Final = new_problem_details(413, "Payload Too Large", "The request body is too large")
UNPROCESSABLE_CONTENT: Final = new_problem_details(422, "Unprocessable Content")
TOO_MANY_REQUESTS: Final = new_problem_details(429, "Too Many Requests")
# code: OpenAI's, so the official client reads an out-of-budget 429 as out of credit (never retried)
BUDGET_EXCEEDED: Final = new_problem_details(
    429, "Budget Exceeded", "Organization token budget exceeded", code="insufficient_quota"
)
INTERNAL_SERVER_ERROR: Final = new_problem_details(
    500, "Internal Server Error", "An unexpected error occurred"
)
SERVICE_UNAVAILABLE: Final = new_problem_details(
    503, "Service Unavailable", "The service is temporarily unavailable"
)
GATEWAY_TIMEOUT: Final = new_problem_details(504, "Gateway Timeout", "The request took too long to process")


class ProblemError(AsgiKitError):
    """Raise anywhere inside an app; ``ProblemDetailsMiddleware`` renders it as its problem."""

    def __init__(self, problem: ProblemDetails, headers: HeaderItems | None = None) -> None:
        super().__init__(f"{problem.status} {problem.title}")
        self.problem = problem
        self.headers = headers


def _encode_headers(headers: HeaderItems | None) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    items: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[bytes, bytes]] = []
    for name, value in items:
        raw_name = name if isinstance(name, bytes) else name.lower().encode("latin-1")
        raw_value = value if isinstance(value, bytes) else value.encode("latin-1")
        if b"\r" in raw_value or b"\n" in raw_value:
            raise ValueError(f"header {raw_name!r} must not contain CR or LF")
        out.append((raw_name.lower(), raw_value))
    return out


def render_problem(problem: ProblemDetails, scope: Scope | None = None) -> bytes:
    """Serialise as problem+json, with the request id (and trace id when traced) as extension members."""
    body = problem.to_dict()
    request_id = get_request_id() or (scope_request_id(scope) if scope is not None else None)
    if request_id and "request_id" not in body:
        body["request_id"] = request_id
    trace = get_trace_ids()
    if trace is not None and "trace_id" not in body:
        body["trace_id"] = trace.trace_id
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def render_error(
    problem: ProblemDetails, scope: Scope | None = None, *, format: ErrorFormat | None = None
) -> tuple[bytes, bytes]:
    """``(content_type, body)`` of ``problem`` in the format of the request.

    ``format`` ``None`` follows the mark on ``scope`` (:func:`asgi_kit.errors.openai.error_format`);
    ``"openai"`` or ``"problem"`` force one. On OpenAI routes the request id travels in the
    ``X-Request-ID`` response header, as OpenAI's own does, and the error object keeps exactly
    OpenAI's four members.
    """
    if (format or error_format(scope)) == "openai":
        error = openai_error(problem.status, problem.title, problem.detail, problem.extensions)
        return OPENAI_CONTENT_TYPE, encode_openai_error(error)
    return PROBLEM_CONTENT_TYPE, render_problem(problem, scope)


async def write_problem_details(
    send: Send,
    problem: ProblemDetails,
    headers: HeaderItems | None = None,
    *,
    scope: Scope | None = None,
    format: ErrorFormat | None = None,
) -> None:
    """Send ``problem`` as a complete response: problem+json, or OpenAI's shape on OpenAI routes.

    Pass ``scope`` so the route's error format is followed, a ``HEAD`` request gets the headers
    without a body, and the request id is found even outside the contextvar. ``format`` forces
    a format whatever the scope says. The response is ``Content-Length``-framed and carries
    ``Cache-Control: no-store`` and ``headers`` (``WWW-Authenticate``, ``Retry-After`` ...);
    ``Content-Type`` and ``Content-Length`` in ``headers`` are ignored.
    """
    content_type, body = render_error(problem, scope, format=format)
    raw_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    raw_headers.extend(
        h for h in _encode_headers(headers) if h[0] not in (b"content-type", b"content-length")
    )
    await send({"type": "http.response.start", "status": problem.status, "headers": raw_headers})
    if scope is not None and scope.get("method") == "HEAD":
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def deny_websocket(
    scope: Scope, send: Send, problem: ProblemDetails, headers: HeaderItems | None = None
) -> None:
    """Refuse a websocket handshake: an HTTP denial response if supported, else close 1008."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        content_type, body = render_error(problem, scope)
        start_headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode("ascii")),
            *(h for h in _encode_headers(headers) if h[0] not in (b"content-type", b"content-length")),
        ]
        await send(
            {"type": "websocket.http.response.start", "status": problem.status, "headers": start_headers}
        )
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "websocket.close", "code": 1008})


def problem_response(problem: ProblemDetails, headers: HeaderItems | None = None) -> ASGIApp:
    """An ASGI app that answers every HTTP request with ``problem`` (a 404 fallback, say)."""
    encoded = _encode_headers(headers)  # validated once, at construction

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        await write_problem_details(send, problem, encoded, scope=scope)

    return app


__all__ = [
    "BAD_REQUEST",
    "BUDGET_EXCEEDED",
    "FORBIDDEN",
    "GATEWAY_TIMEOUT",
    "INTERNAL_SERVER_ERROR",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "PAYLOAD_TOO_LARGE",
    "PROBLEM_CONTENT_TYPE",
    "SERVICE_UNAVAILABLE",
    "TOO_MANY_REQUESTS",
    "UNAUTHORIZED",
    "UNPROCESSABLE_CONTENT",
    "ProblemDetails",
    "ProblemError",
    "deny_websocket",
    "new_problem_details",
    "problem_response",
    "render_error",
    "render_problem",
    "write_problem_details",
]
