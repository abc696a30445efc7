"""Bad input stops at the door: a bounded JSON body reader and the OpenAI request schemas.

- :func:`read_json_body`: the request body as JSON, bounded in size (413) and nesting depth,
  UTF-8 only, finite numbers only; every refusal a 400 problem naming the parameter.
- :func:`validate_chat_completion`, :func:`validate_embeddings`: the bodies of the
  OpenAI-compatible endpoints against strict schemas and the gateway's :class:`RequestLimits`.

Every refusal is a :class:`~asgi_kit.errors.ProblemError` with the extension members ``param``
and ``code``: problem+json by default, OpenAI's ``invalid_request_error`` on routes marked as
OpenAI-compatible. Pure ASGI and pydantic; no optional dependency.
"""

from asgi_kit.validation.json_body import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    MAX_INTEGER_DIGITS,
    JSONBodyError,
    invalid_body,
    parse_json_body,
    read_json_body,
)
from asgi_kit.validation.openai_requests import (
    DEFAULT_LIMITS,
    ChatCompletionRequest,
    ChatMessageParam,
    EmbeddingsRequest,
    RequestLimits,
    StreamOptions,
    invalid_request,
    validate_chat_completion,
    validate_embeddings,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_INTEGER_DIGITS",
    "ChatCompletionRequest",
    "ChatMessageParam",
    "EmbeddingsRequest",
    "JSONBodyError",
    "RequestLimits",
    "StreamOptions",
    "invalid_body",
    "invalid_request",
    "parse_json_body",
    "read_json_body",
    "validate_chat_completion",
    "validate_embeddings",
]
