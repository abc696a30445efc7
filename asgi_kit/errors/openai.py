"""OpenAI's error shape, for the routes an app marks as OpenAI-compatible.

OpenAI clients (the official ``openai`` package, LangChain, every tool built on them) read
``{"error": {"message", "type", "param", "code"}}`` with ``Content-Type: application/json``;
a problem+json body leaves them with ``Error code: 401`` and nothing else. The kit keeps one
error type, :class:`~asgi_kit.errors.ProblemDetails`, and renders it in OpenAI's shape on the
marked routes:

- ``message`` is the problem's ``detail`` (its ``title`` when it has none);
- ``param`` and ``code`` are the problem's extension members of those names (``None`` when absent);
- ``type`` is the extension member ``error_type`` when the problem names one, else derived from
  the ``code`` (``insufficient_quota``), else from the status (:data:`OPENAI_ERROR_TYPES`).

Routes are marked by putting :data:`ERROR_FORMAT_KEY` ``= "openai"`` in the scope:
``ProblemDetailsMiddleware(openai_paths=("/v1/*",))`` does it once per request, and every layer
that answers through :func:`~asgi_kit.errors.write_problem_details` follows the mark.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import Scope

#: The scope key holding the error format of the request: ``"openai"`` or absent (problem+json).
ERROR_FORMAT_KEY: Final = "asgi_kit.error_format"
OPENAI_FORMAT: Final = "openai"
OPENAI_CONTENT_TYPE: Final = b"application/json"

ErrorFormat = Literal["problem", "openai"]

#: ``status -> (type, default code)`` of the OpenAI error for a problem of that status. OpenAI
#: reports client errors (bad body, bad or missing key, missing permission, unknown model) as
#: ``invalid_request_error``, rate limits with ``type`` ``requests`` and code
#: ``rate_limit_exceeded``, and its own failures as ``server_error``.
OPENAI_ERROR_TYPES: Final[Mapping[int, tuple[str, str | None]]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", None),
    403: ("invalid_request_error", "insufficient_permissions"),
    404: ("invalid_request_error", None),
    405: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "upstream_error"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}

#: Codes whose OpenAI ``type`` is not the status's: out of credit is its own type.
OPENAI_TYPES_BY_CODE: Final[Mapping[str, str]] = {"insufficient_quota": "insufficient_quota"}


def error_format(scope: Scope | None) -> ErrorFormat:
    """The error format marked on ``scope``: ``"openai"`` or ``"problem"`` (the default)."""
    if scope is not None and scope.get(ERROR_FORMAT_KEY) == OPENAI_FORMAT:
        return "openai"
    return "problem"


def mark_openai(scope: Scope) -> None:
    """Mark the request in ``scope`` as an OpenAI-compatible one: its errors take OpenAI's shape."""
    scope[ERROR_FORMAT_KEY] = OPENAI_FORMAT


def openai_error(
    status: int, title: str, detail: str | None, extensions: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``{"error": {...}}`` object for a problem with these members."""
    status_type, default_code = OPENAI_ERROR_TYPES.get(
        status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    code = _text_or_none(extensions.get("code", default_code))
    error_type = _text_or_none(extensions.get("error_type"))
    if error_type is None:
        error_type = OPENAI_TYPES_BY_CODE.get(code or "", status_type)
    return {
        "error": {
            "message": detail or title,
            "type": error_type,
            "param": _text_or_none(extensions.get("param")),
            "code": code,
        }
    }


def encode_openai_error(error: Mapping[str, Any]) -> bytes:
    return json.dumps(error, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class OpenAIRoutes:
    """The routes whose errors a layer renders in OpenAI's shape: the ``openai_paths`` option.

    ``True`` for every route, ``False`` or ``()`` for none, or ``PathFilter`` patterns
    (``"/v1/*"``, exact paths). Every layer that answers errors itself takes the option under
    this one name, with this one meaning.
    """

    __slots__ = ("_all", "_paths")

    def __init__(self, openai_paths: bool | Sequence[str], *, option: str = "openai_paths") -> None:
        self._all = openai_paths is True
        self._paths = PathFilter(() if isinstance(openai_paths, bool) else openai_paths, option=option)

    def __bool__(self) -> bool:
        return self._all or bool(self._paths)

    def __repr__(self) -> str:
        return "OpenAIRoutes(True)" if self._all else f"OpenAIRoutes({self._paths!r})"

    def matches(self, scope: Scope) -> bool:
        return self._all or self._paths.matches(scope)


__all__ = [
    "ERROR_FORMAT_KEY",
    "OPENAI_CONTENT_TYPE",
    "OPENAI_ERROR_TYPES",
    "OPENAI_FORMAT",
    "OPENAI_TYPES_BY_CODE",
    "ErrorFormat",
    "OpenAIRoutes",
    "encode_openai_error",
    "error_format",
    "mark_openai",
    "openai_error",
]
