"""How the demo answers a failed upstream call: its own error, never the upstream's body."""

from __future__ import annotations

import pytest

from asgi_kit.demo.handlers import MODEL_NOT_FOUND, _upstream_problem
from asgi_kit.httpclient import (
    APIConnectionError,
    APIError,
    APIReportedError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

SECRET = "tenant-42 said: sk-upstream-secret"


@pytest.mark.parametrize(
    ("exc", "status", "code", "param"),
    [
        (NotFoundError(SECRET, status_code=404, code="model_not_found"), 404, "model_not_found", "model"),
        (NotFoundError(SECRET, status_code=404, code="unknown_url"), 404, "unknown_url", None),
        (
            BadRequestError(SECRET, status_code=400, code="context_length_exceeded", param="messages"),
            400,
            "context_length_exceeded",
            "messages",
        ),
        (BadRequestError(SECRET, status_code=400, code="Not A Code!", param="a b"), 400, None, None),
        (UnprocessableEntityError(SECRET, status_code=422), 422, None, None),
        (RateLimitError(SECRET, status_code=429, code="rate_limit_exceeded"), 503, None, None),
        (RateLimitError(SECRET, status_code=429, code="insufficient_quota"), 503, None, None),
        (AuthenticationError(SECRET, status_code=401, code="invalid_api_key"), 502, None, None),
        (PermissionDeniedError(SECRET, status_code=403), 502, None, None),
        (InternalServerError(SECRET, status_code=500), 502, None, None),
        (APITimeoutError(SECRET), 504, None, None),
        (APIConnectionError(SECRET), 502, None, None),
        (APIReportedError(SECRET, code="server_error"), 502, None, None),
    ],
)
def test_upstream_errors_map_to_the_gateways_own(
    exc: APIError, status: int, code: str | None, param: str | None
) -> None:
    """Statuses map to the caller's view; only identifier-like codes and params pass; no upstream text."""
    problem = _upstream_problem(exc)
    assert problem.status == status
    assert problem.extensions.get("code") == code
    assert problem.extensions.get("param") == param
    assert "secret" not in problem.model_dump_json() and "tenant" not in problem.model_dump_json()
    if code == "model_not_found":
        assert problem is MODEL_NOT_FOUND
