"""Outbound HTTP: :class:`HTTPClient` (retries, timeouts, deadline, context propagation) and
:class:`OpenAIClient` for OpenAI-compatible upstreams.

Needs the ``client`` extra: ``pip install 'asgi-kit[client]'``.
"""

from asgi_kit._asgi.optional import require

require("aiohttp", "client")
require("backoff", "client")

from asgi_kit.httpclient.client import SENSITIVE_HEADERS, HTTPClient
from asgi_kit.httpclient.errors import (
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
from asgi_kit.httpclient.openai import NON_RETRYABLE_CODES, OpenAIClient
from asgi_kit.httpclient.openai_errors import (
    APIConnectionError,
    APIError,
    APIReportedError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from asgi_kit.httpclient.openai_models import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatMessage,
    ChoiceDelta,
    Embedding,
    EmbeddingsResponse,
    Model,
    ModelList,
    Usage,
)
from asgi_kit.httpclient.policy import (
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    Clock,
    Limits,
    RetryPolicy,
    SystemClock,
    Timeouts,
    VirtualClock,
)
from asgi_kit.httpclient.response import AttemptRecord, Response, StreamResponse
from asgi_kit.httpclient.sse import ServerSentEvent, SSEDecodeError, SSEDecoder

__all__ = [
    "IDEMPOTENT_METHODS",
    "NON_RETRYABLE_CODES",
    "RETRY_STATUSES",
    "SENSITIVE_HEADERS",
    "APIConnectionError",
    "APIError",
    "APIReportedError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AttemptRecord",
    "AttemptTimeout",
    "AuthenticationError",
    "BadRequestError",
    "ChatCompletion",
    "ChatCompletionChoice",
    "ChatCompletionChunk",
    "ChatCompletionChunkChoice",
    "ChatMessage",
    "ChoiceDelta",
    "Clock",
    "ConflictError",
    "ConnectError",
    "DeadlineExceeded",
    "Embedding",
    "EmbeddingsResponse",
    "HTTPClient",
    "HTTPClientError",
    "HTTPStatusError",
    "IncompleteStreamError",
    "InternalServerError",
    "Limits",
    "Model",
    "ModelList",
    "NetworkError",
    "NotFoundError",
    "OpenAIClient",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "Response",
    "RetryAfterTooLong",
    "RetryPolicy",
    "SSEDecodeError",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamResponse",
    "SystemClock",
    "TimeoutException",
    "Timeouts",
    "TooManyRedirects",
    "TransportError",
    "UnprocessableEntityError",
    "Usage",
    "VirtualClock",
]
