"""Outbound HTTP: :class:`HTTPClient` (retries, timeouts, deadline, context propagation) and
:class:`OpenAIClient` for OpenAI-compatible upstreams.

Needs the ``client`` extra: ``pip install 'asgi-kit[client]'``.
"""

from asgi_kit._asgi.optional import require

require("aiohttp", "client")
require("backoff", "client")

from asgi_kit.httpclient.client import SENSITIVE_HEADERS, HTTPClient  # noqa: E402
from asgi_kit.httpclient.errors import (  # noqa: E402
    AttemptTimeout,
    ConnectError,
    DeadlineExceeded,
    HTTPClientError,
    HTTPStatusError,
    NetworkError,
    RetryAfterTooLong,
    TimeoutException,
    TooManyRedirects,
    TransportError,
)
from asgi_kit.httpclient.policy import (  # noqa: E402
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    Clock,
    Limits,
    RetryPolicy,
    SystemClock,
    Timeouts,
    VirtualClock,
)
from asgi_kit.httpclient.response import AttemptRecord, Response, StreamResponse  # noqa: E402

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "SENSITIVE_HEADERS",
    "AttemptRecord",
    "AttemptTimeout",
    "Clock",
    "ConnectError",
    "DeadlineExceeded",
    "HTTPClient",
    "HTTPClientError",
    "HTTPStatusError",
    "Limits",
    "NetworkError",
    "Response",
    "RetryAfterTooLong",
    "RetryPolicy",
    "StreamResponse",
    "SystemClock",
    "TimeoutException",
    "Timeouts",
    "TooManyRedirects",
    "TransportError",
    "VirtualClock",
]
