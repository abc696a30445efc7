"""Errors raised by :class:`~asgi_kit.httpclient.OpenAIClient`, shaped like the official SDK's.

The hierarchy::

    OpenAIError
    └── APIError                        message, body, request_id, code, type, param
        ├── APIStatusError              an HTTP error status: status_code, retry_after
        │   ├── BadRequestError             400 (code "context_length_exceeded" among others)
        │   ├── AuthenticationError         401
        │   ├── PermissionDeniedError       403
        │   ├── NotFoundError               404
        │   ├── ConflictError               409
        │   ├── UnprocessableEntityError    422
        │   ├── RateLimitError              429 (code "insufficient_quota": out of credit)
        │   └── InternalServerError         5xx (an HTML 502 from a proxy lands here)
        ├── APIConnectionError          no usable response (refused, reset, broken stream)
        │   └── APITimeoutError         an attempt timeout or the deadline
        ├── APIResponseValidationError  a 2xx body that is not what the API promises:
        │                               not UTF-8, not JSON, HTML, missing ``choices``...
        ├── APIReportedError            an error object where a result was expected: a 200
        │                               whose body is ``{"error": ...}``, or an error event
        │                               inside a stream
        └── IncompleteStreamError       a stream that ended without ``data: [DONE]``

``request_id`` is the upstream's ``x-request-id`` response header: quote it to the provider.
No error ever carries the API key.
"""

from __future__ import annotations

from typing import Any, Final

from asgi_kit._asgi.exceptions import AsgiKitError


class OpenAIError(AsgiKitError):
    """Base class of every error the OpenAI client raises."""


class APIError(OpenAIError):
    """An error about one API call.

    Attributes:
        message: a human-readable message (the upstream's ``error.message`` when it sent one).
        body: the parsed JSON error body, the body text (trimmed), or ``None``.
        request_id: the upstream's ``x-request-id``, or ``None``.
        code: ``error.code`` (``"insufficient_quota"``, ``"context_length_exceeded"``...).
        type: ``error.type`` (``"invalid_request_error"``...).
        param: ``error.param``.
    """

    def __init__(
        self,
        message: str,
        *,
        body: Any = None,
        request_id: str | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.body = body
        self.request_id = request_id
        self.code = code
        self.type = type
        self.param = param


class APIStatusError(APIError):
    """The upstream answered with an error status.

    Attributes:
        status_code: the HTTP status.
        retry_after: the wait the upstream asked for, when it asked for one beyond the cap.
    """

    def __init__(
        self, message: str, *, status_code: int, retry_after: float | None = None, **fields: Any
    ) -> None:
        super().__init__(message, **fields)
        self.status_code = status_code
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the request is invalid (also ``context_length_exceeded``)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: unknown model or path."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429: slow down, or ``code == "insufficient_quota"``: out of credit (never retried)."""


class InternalServerError(APIStatusError):
    """5xx: the upstream (or a proxy in front of it) failed."""


class APIConnectionError(APIError):
    """No usable response: connection refused or reset, or a stream broken mid-way."""


class APITimeoutError(APIConnectionError):
    """An attempt ran past its timeout, or the call past its deadline."""


class APIResponseValidationError(APIError):
    """A successful status with a body that is not what the API promises.

    Attributes:
        status_code: the HTTP status of the response.
    """

    def __init__(self, message: str, *, status_code: int = 200, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.status_code = status_code


class APIReportedError(APIError):
    """The upstream reported an error object where a result was expected (a 200 or a stream event)."""


class IncompleteStreamError(APIError):
    """The stream ended (cleanly, at the transport level) without ``data: [DONE]``."""


STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an error status."""
    if status >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status, APIStatusError)


__all__ = [
    "STATUS_ERRORS",
    "APIConnectionError",
    "APIError",
    "APIReportedError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "IncompleteStreamError",
    "InternalServerError",
    "NotFoundError",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "status_error_class",
]
