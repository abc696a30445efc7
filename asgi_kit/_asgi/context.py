"""Request-scoped state that every layer and the app's own code can read.

The request id and the current trace ids live in contextvars, so every log record emitted
inside a request carries them and the HTTP client forwards them on outbound calls. This
module is the seam: the layers that *set* them (request id, tracing) and the ones that
*read* them (logging, errors, httpclient) only meet here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final, NamedTuple

from asgi_kit._asgi.types import Scope

REQUEST_ID_STATE_KEY: Final = "request_id"


class TraceIds(NamedTuple):
    """Hex ids of the current span, as they appear in logs and ``traceparent``."""

    trace_id: str
    span_id: str
    traceparent: str
    tracestate: str | None = None


request_id_var: ContextVar[str | None] = ContextVar("asgi_kit.request_id", default=None)
trace_ids_var: ContextVar[TraceIds | None] = ContextVar("asgi_kit.trace_ids", default=None)


def get_request_id() -> str | None:
    """The current request's id, or ``None`` outside a request."""
    return request_id_var.get()


@contextmanager
def with_request_id(request_id: str) -> Iterator[str]:
    """Run a block (a background job, a CLI command) under a request id."""
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)


def get_trace_ids() -> TraceIds | None:
    """The ids of the current server span, or ``None`` when the request is not traced."""
    return trace_ids_var.get()


def scope_request_id(scope: Scope) -> str | None:
    """The request id stored in ``scope["state"]`` by ``RequestIDMiddleware``."""
    state = scope.get("state")
    if state is None:
        return None
    if isinstance(state, dict):
        value = state.get(REQUEST_ID_STATE_KEY)
    else:
        value = getattr(state, REQUEST_ID_STATE_KEY, None)
    return value if isinstance(value, str) else None


__all__ = [
    "REQUEST_ID_STATE_KEY",
    "TraceIds",
    "get_request_id",
    "get_trace_ids",
    "request_id_var",
    "scope_request_id",
    "trace_ids_var",
    "with_request_id",
]
