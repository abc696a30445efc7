"""What every framework adapter shares: exception -> :class:`ProblemDetails`, and the headers.

Nothing here imports a web framework; the adapters turn these problems into their own
response objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from asgi_kit._asgi.context import get_request_id, scope_request_id
from asgi_kit._asgi.types import Scope
from asgi_kit.errors import (
    BAD_REQUEST,
    FORBIDDEN,
    GATEWAY_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    UNPROCESSABLE_CONTENT,
    ProblemDetails,
    new_problem_details,
)

logger = logging.getLogger("asgi_kit.integrations")

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
#: A validation message longer than this is cut: messages come from user-written validators.
MAX_MESSAGE_LENGTH: Final = 500
#: At most this many validation errors are listed, so a huge invalid body cannot make a huge answer.
MAX_ERRORS: Final = 50

_TEMPLATES: Final[Mapping[int, ProblemDetails]] = {
    p.status: p
    for p in (
        BAD_REQUEST,
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        PAYLOAD_TOO_LARGE,
        UNPROCESSABLE_CONTENT,
        TOO_MANY_REQUESTS,
        INTERNAL_SERVER_ERROR,
        SERVICE_UNAVAILABLE,
        GATEWAY_TIMEOUT,
    )
}
_DROPPED_HEADERS: Final = frozenset({"content-type", "content-length"})


def framework_missing(module: str, distribution: str, exc: ImportError) -> ImportError:
    """The ImportError an adapter raises when its framework is not installed."""
    error = ImportError(
        f"asgi_kit.integrations.{module} needs {distribution}; install it with: pip install {module}"
    )
    error.__cause__ = exc
    return error


def is_problem_status(status_code: int) -> bool:
    """Whether a status can carry a problem body (RFC 9457 is for 4xx and 5xx)."""
    return 400 <= status_code <= 599


def http_problem(status_code: int, detail: Any = None) -> ProblemDetails:
    """The problem for a framework HTTP exception with ``status_code`` and ``detail``.

    The framework's default detail (the status phrase) is dropped, so a framework 404 looks
    exactly like the kit's ``NOT_FOUND``. A 5xx never shows the exception's detail: it may carry
    internals (raise a :class:`~asgi_kit.errors.ProblemError` to choose a 5xx body). A detail
    that is not a string (FastAPI allows any JSON) goes to the ``details`` extension member.
    """
    template = _TEMPLATES.get(status_code) or new_problem_details(status_code)
    if status_code >= 500 or detail is None or detail == "":
        return template
    if isinstance(detail, str):
        try:
            phrase = HTTPStatus(status_code).phrase
        except ValueError:
            phrase = None
        return template if detail == phrase else template.with_detail(detail)
    return template.with_extensions(details=detail)


def validation_problem(
    errors: Iterable[tuple[Sequence[Any], Any, Any]], status_code: int = 422, detail: str | None = None
) -> ProblemDetails:
    """A validation problem listing ``(loc, msg, type)`` for each error, never the input values.

    ``detail`` defaults to "The request is invalid".
    """
    listed: list[dict[str, Any]] = []
    for loc, msg, kind in errors:
        if len(listed) >= MAX_ERRORS:
            break
        listed.append(
            {
                "loc": [part if isinstance(part, int) else str(part) for part in loc],
                "msg": str(msg)[:MAX_MESSAGE_LENGTH],
                "type": str(kind),
            }
        )
    base = _TEMPLATES.get(status_code) or new_problem_details(status_code)
    return base.with_detail(detail or "The request is invalid").with_extensions(errors=listed)


def unhandled_problem(exc: BaseException, scope: Scope, log: logging.Logger) -> ProblemDetails:
    """Log an unexpected exception once, with the request id, and return the bare 500 problem."""
    path = (scope.get("path") or "")[:512].encode("unicode_escape").decode("ascii")
    log.error(
        "unhandled exception in %s %s",
        scope.get("method"),
        path,
        exc_info=exc,
        extra={"request_id": get_request_id() or scope_request_id(scope), "error_type": type(exc).__name__},
    )
    return INTERNAL_SERVER_ERROR


def header_pairs(headers: Any) -> list[tuple[str, str]]:
    """Headers of an exception (mapping, or pairs of str or bytes) as ``(name, value)`` strings.

    ``Content-Type`` and ``Content-Length`` are dropped: the problem body sets its own.
    """
    if not headers:
        return []
    items: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        text_name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        text_value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if text_name.lower() not in _DROPPED_HEADERS:
            pairs.append((text_name, text_value))
    return pairs


__all__ = [
    "MAX_ERRORS",
    "MAX_MESSAGE_LENGTH",
    "PROBLEM_MEDIA_TYPE",
    "framework_missing",
    "header_pairs",
    "http_problem",
    "is_problem_status",
    "unhandled_problem",
    "validation_problem",
]
