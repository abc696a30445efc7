"""Exceptions raised by :class:`~asgi_kit.httpclient.HTTPClient`.

The hierarchy::

    HTTPClientError                 base of everything the client raises
    ├── TransportError              no usable response arrived
    │   ├── ConnectError            the connection was never made: the request never left
    │   ├── NetworkError            the connection broke after the request may have been sent
    │   └── TimeoutException
    │       ├── AttemptTimeout      one attempt ran past its per-attempt timeout
    │       └── DeadlineExceeded    the overall deadline of the call ran out
    ├── RetryAfterTooLong           the server asked for a wait longer than ``max_retry_after``
    ├── TooManyRedirects            more redirects than ``max_redirects``
    └── HTTPStatusError             raised by ``Response.raise_for_status()`` for 4xx/5xx

Every error carries the ``method``, the ``url`` (query string removed: it can hold secrets)
and the number of ``attempts`` made. Transport errors keep the aiohttp exception as
``__cause__``; aiohttp exceptions never escape the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgi_kit._asgi.exceptions import AsgiKitError

if TYPE_CHECKING:
    from asgi_kit.httpclient.response import Response


class HTTPClientError(AsgiKitError):
    """Base class of every error the HTTP client raises."""

    def __init__(self, message: str, *, method: str = "", url: str = "", attempts: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.attempts = attempts


class TransportError(HTTPClientError):
    """No usable response arrived (connection, network or timeout failure)."""


class ConnectError(TransportError):
    """The connection could not be made (refused, DNS, connect timeout): the request never left.

    Safe to retry for every method, POST included.
    """


class NetworkError(TransportError):
    """The connection failed after the request may have reached the server."""


class TimeoutException(TransportError):
    """Base class of the timeouts."""


class AttemptTimeout(TimeoutException):
    """One attempt ran past its per-attempt timeout."""


class DeadlineExceeded(TimeoutException):
    """The overall deadline of the call ran out (all attempts and waits included)."""


class RetryAfterTooLong(HTTPClientError):
    """The server asked for a wait (``Retry-After``) longer than the client's cap.

    Attributes:
        retry_after: the wait the server asked for, in seconds.
        response: the response that asked for it (already read and released).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        response: Response,
        method: str = "",
        url: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(message, method=method, url=url, attempts=attempts)
        self.retry_after = retry_after
        self.response = response


class TooManyRedirects(HTTPClientError):
    """The redirect chain was longer than ``max_redirects``."""


class HTTPStatusError(HTTPClientError):
    """A 4xx or 5xx response, raised by :meth:`Response.raise_for_status`."""

    def __init__(
        self, message: str, *, response: Response, method: str = "", url: str = "", attempts: int = 0
    ) -> None:
        super().__init__(message, method=method, url=url, attempts=attempts)
        self.response = response


__all__ = [
    "AttemptTimeout",
    "ConnectError",
    "DeadlineExceeded",
    "HTTPClientError",
    "HTTPStatusError",
    "NetworkError",
    "RetryAfterTooLong",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
]
