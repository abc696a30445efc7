"""Starlette exception handlers that answer with the kit's problem+json.

Starlette answers its own errors before an outer ASGI layer sees them: the router's 404 and
405 become plain-text responses inside the app, and an unhandled exception becomes a plain
500 in ``ServerErrorMiddleware``. With these handlers they become the same RFC 9457 problems,
with the request id, that the kit's layers produce::

    from starlette.applications import Starlette
    from asgi_kit.integrations.starlette import problem_exception_handlers

    app = Starlette(routes=routes, exception_handlers=problem_exception_handlers())

The ``Exception`` handler is installed by Starlette in ``ServerErrorMiddleware``, which still
re-raises the exception after the 500 was sent (so servers log it and ``TestClient`` raises;
use ``TestClient(app, raise_server_exceptions=False)`` to see the response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgi_kit.errors import ProblemDetails, ProblemError, render_error
from asgi_kit.integrations._problems import (
    framework_missing,
    header_pairs,
    http_problem,
    is_problem_status,
    unhandled_problem,
)
from asgi_kit.integrations._problems import (
    logger as default_logger,
)

try:
    from starlette.exceptions import HTTPException
    from starlette.requests import HTTPConnection
    from starlette.responses import Response
    from starlette.websockets import WebSocket
except ImportError as exc:  # tested with the framework hidden from sys.modules
    raise framework_missing("starlette", "Starlette", exc) from exc


def problem_response(
    problem: ProblemDetails, connection: HTTPConnection, headers: list[tuple[str, str]] | None = None
) -> Response:
    """A Starlette ``Response`` holding ``problem`` as ``application/problem+json`` (OpenAI's error
    shape on routes marked as OpenAI-compatible)."""
    content_type, body = render_error(problem, connection.scope)
    response = Response(content=body, status_code=problem.status, media_type=content_type.decode("ascii"))
    response.raw_headers.append((b"cache-control", b"no-store"))
    # raw_headers keeps duplicates (two WWW-Authenticate challenges, say); a dict would not.
    response.raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or ())
    return response


async def _close_websocket(connection: HTTPConnection, status: int) -> None:
    # A websocket gets no HTTP body: close it, 1008 for the client's errors, 1011 for ours.
    if isinstance(connection, WebSocket):
        await connection.close(code=1011 if status >= 500 else 1008)


def problem_exception_handlers(*, logger: logging.Logger | None = None) -> dict[Any, Callable[..., Any]]:
    """The mapping for ``Starlette(exception_handlers=...)``.

    - ``HTTPException`` (the router's 404 and 405, and any you raise): the kit's problem for that
      status, the exception's headers kept (``Allow``, ``WWW-Authenticate``); a custom detail is
      kept for 4xx and never shown for 5xx.
    - :class:`~asgi_kit.errors.ProblemError`: its problem and headers.
    - ``Exception``: logged once with the request id on ``asgi_kit.integrations``, answered with
      the bare 500 problem (no exception text), then re-raised by Starlette.

    Args:
        logger: where unhandled exceptions are logged (``asgi_kit.integrations`` by default).
    """
    log = logger or default_logger

    async def http_exception(connection: HTTPConnection, exc: HTTPException) -> Response | None:
        if connection.scope["type"] == "websocket":
            await _close_websocket(connection, exc.status_code)
            return None
        if not is_problem_status(exc.status_code):
            # Not an error (a 304 raised as an exception, say): no problem body is allowed.
            return Response(status_code=exc.status_code, headers=exc.headers)
        return problem_response(
            http_problem(exc.status_code, exc.detail), connection, header_pairs(exc.headers)
        )

    async def problem_error(connection: HTTPConnection, exc: ProblemError) -> Response | None:
        if connection.scope["type"] == "websocket":
            await _close_websocket(connection, exc.problem.status)
            return None
        return problem_response(exc.problem, connection, header_pairs(exc.headers))

    async def unhandled(connection: HTTPConnection, exc: Exception) -> Response:
        return problem_response(unhandled_problem(exc, connection.scope, log), connection)

    return {HTTPException: http_exception, ProblemError: problem_error, Exception: unhandled}


__all__ = ["problem_exception_handlers", "problem_response"]
