"""Litestar exception handlers that answer with the kit's problem+json.

Litestar catches every exception inside the app (404 and 405 from the router included) and
answers ``{"status_code": ..., "detail": ...}`` before an outer ASGI layer sees anything. With
these handlers the answers are the kit's RFC 9457 problems, with the request id::

    from litestar import Litestar
    from asgi_kit.integrations.litestar import problem_exception_handlers

    app = Litestar(route_handlers=[...], exception_handlers=problem_exception_handlers())

Litestar does not re-raise an exception it handled, so the unhandled-exception handler logs it
(once, with the request id) before answering the bare 500 problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from asgi_kit.errors import ProblemDetails, ProblemError, render_error
from asgi_kit.integrations._problems import (
    framework_missing,
    header_pairs,
    http_problem,
    is_problem_status,
    unhandled_problem,
    validation_problem,
)
from asgi_kit.integrations._problems import logger as default_logger

try:
    from litestar import Request, Response
    from litestar.exceptions import HTTPException, ValidationException
except ImportError as exc:  # tested with the framework hidden from sys.modules
    raise framework_missing("litestar", "Litestar", exc) from exc

LitestarRequest = Request[Any, Any, Any]
_GENERATED_DETAIL = "Validation failed for "


def problem_response(
    problem: ProblemDetails, request: LitestarRequest, headers: list[tuple[str, str]] | None = None
) -> Response[bytes]:
    """A Litestar ``Response`` holding ``problem`` as ``application/problem+json`` (OpenAI's error
    shape on routes marked as OpenAI-compatible)."""
    merged = {"cache-control": "no-store"}
    merged.update(headers or ())
    content_type, body = render_error(problem, request.scope)  # type: ignore[arg-type]
    return Response(
        content=body,
        status_code=problem.status,
        media_type=content_type.decode("ascii"),
        headers=merged,
    )


def _validation_triples(extra: Any) -> list[tuple[Any, Any, Any]]:
    # Litestar lists {"message", "key", "source"} per error; "key" is the field, never its value.
    triples: list[tuple[Any, Any, Any]] = []
    for item in extra if isinstance(extra, list) else ():
        if isinstance(item, Mapping):
            loc = [part for part in (item.get("source"), item.get("key")) if part is not None]
            triples.append((loc, item.get("message", ""), "validation_error"))
    return triples


def _own_detail(exc: ValidationException) -> str | None:
    # Litestar's generated detail is "Validation failed for GET /path?query": the query may hold
    # a token, so it is replaced; a detail the app wrote itself is kept.
    detail = exc.detail
    if not detail or detail.startswith(_GENERATED_DETAIL) or detail == HTTPStatus(exc.status_code).phrase:
        return None
    return detail


def problem_exception_handlers(*, logger: logging.Logger | None = None) -> dict[Any, Callable[..., Any]]:
    """The mapping for ``Litestar(exception_handlers=...)`` (app level, so 404 and 405 are covered).

    - ``ValidationException``: its status (400) with an ``errors`` extension listing ``loc``,
      ``msg`` and ``type`` of each error, never the input values. The detail Litestar generates
      (it holds the query string) becomes "The request is invalid"; one the app wrote is kept.
    - ``HTTPException`` (``NotFoundException``, ``MethodNotAllowedException`` ...): the kit's
      problem for that status, headers kept (``Allow``); a custom detail is kept for 4xx.
    - :class:`~asgi_kit.errors.ProblemError`: its problem and headers.
    - ``Exception``: logged once with the request id on ``asgi_kit.integrations``, answered with
      the bare 500 problem (no exception text).

    Args:
        logger: where unhandled exceptions are logged (``asgi_kit.integrations`` by default).
    """
    log = logger or default_logger

    def validation(request: LitestarRequest, exc: ValidationException) -> Response[bytes]:
        problem = validation_problem(_validation_triples(exc.extra), exc.status_code, _own_detail(exc))
        return problem_response(problem, request, header_pairs(exc.headers))

    def http_exception(request: LitestarRequest, exc: HTTPException) -> Response[bytes]:
        if not is_problem_status(exc.status_code):
            return Response(content=b"", status_code=exc.status_code, headers=exc.headers)
        problem = http_problem(exc.status_code, exc.detail)
        return problem_response(problem, request, header_pairs(exc.headers))

    def problem_error(request: LitestarRequest, exc: ProblemError) -> Response[bytes]:
        return problem_response(exc.problem, request, header_pairs(exc.headers))

    def unhandled(request: LitestarRequest, exc: Exception) -> Response[bytes]:
        return problem_response(unhandled_problem(exc, request.scope, log), request)  # type: ignore[arg-type]

    return {
        ValidationException: validation,
        HTTPException: http_exception,
        ProblemError: problem_error,
        Exception: unhandled,
    }


__all__ = ["problem_exception_handlers", "problem_response"]
