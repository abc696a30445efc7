"""FastAPI exception handlers that answer with the kit's problem+json.

FastAPI renders its own ``{"detail": ...}`` bodies for HTTP exceptions and validation errors,
and Starlette's plain-text 500 for unhandled exceptions, all before an outer ASGI layer sees
them. With these handlers they become the kit's RFC 9457 problems, with the request id::

    from fastapi import FastAPI
    from asgi_kit.integrations.fastapi import problem_exception_handlers

    app = FastAPI(exception_handlers=problem_exception_handlers())

A ``RequestValidationError`` becomes a 422 problem whose ``errors`` extension lists ``loc``,
``msg`` and ``type`` of each error, and never the ``input`` values (they may hold passwords or
tokens). Everything else is as in :mod:`asgi_kit.integrations.starlette`, which this builds on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgi_kit.integrations._problems import framework_missing, validation_problem
from asgi_kit.integrations.starlette import problem_exception_handlers as starlette_handlers
from asgi_kit.integrations.starlette import problem_response

try:
    from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
    from starlette.requests import HTTPConnection
    from starlette.responses import Response
    from starlette.websockets import WebSocket
except ImportError as exc:  # tested with the framework hidden from sys.modules
    raise framework_missing("fastapi", "FastAPI", exc) from exc


def _error_triples(errors: Any) -> list[tuple[Any, Any, Any]]:
    triples: list[tuple[Any, Any, Any]] = []
    for error in errors:
        if isinstance(error, dict):
            triples.append((error.get("loc") or (), error.get("msg", ""), error.get("type", "value_error")))
    return triples


def problem_exception_handlers(*, logger: logging.Logger | None = None) -> dict[Any, Callable[..., Any]]:
    """The mapping for ``FastAPI(exception_handlers=...)``.

    The Starlette handlers (``HTTPException``, :class:`~asgi_kit.errors.ProblemError`,
    ``Exception``) plus ``RequestValidationError`` (422 problem with an ``errors`` list) and
    ``WebSocketRequestValidationError`` (the websocket is closed with 1008). A
    ``ResponseValidationError`` is the server's bug: it is answered like any unhandled exception.

    Args:
        logger: where unhandled exceptions are logged (``asgi_kit.integrations`` by default).
    """

    async def request_validation(connection: HTTPConnection, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(_error_triples(exc.errors())), connection)

    async def websocket_validation(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
        await websocket.close(code=1008)

    handlers = starlette_handlers(logger=logger)
    handlers[RequestValidationError] = request_validation
    handlers[WebSocketRequestValidationError] = websocket_validation
    return handlers


__all__ = ["problem_exception_handlers"]
