"""Request ids and structured JSON logging (contract section 6).

Needs the ``logging`` extra (python-json-logger)::

    pip install 'asgi-kit[logging]'

Nothing here configures logging on import; :func:`new_logger` installs one handler on the
logger it returns.
"""

from __future__ import annotations

from asgi_kit._asgi.optional import require

require("pythonjsonlogger", "logging")

from asgi_kit._asgi.context import get_request_id, with_request_id
from asgi_kit.logging.logger import JsonLogFormatter, RequestContextFilter, new_logger
from asgi_kit.logging.middleware import LoggingMiddleware
from asgi_kit.logging.redaction import redact_url_credentials
from asgi_kit.logging.request_id import RequestIDMiddleware, is_valid_request_id, new_request_id

__all__ = [
    "JsonLogFormatter",
    "LoggingMiddleware",
    "RequestContextFilter",
    "RequestIDMiddleware",
    "get_request_id",
    "is_valid_request_id",
    "new_logger",
    "new_request_id",
    "redact_url_credentials",
    "with_request_id",
]
