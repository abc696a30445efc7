"""Edge guards: cheap checks that belong at the outer edge of the stack.

- :class:`TimeoutMiddleware`: a 504 problem when the app has not started its response in time.
- :class:`BodyLimitMiddleware`: a 413 problem when the request body is too large, enforced while
  the body streams (with or without ``Content-Length``).
- :class:`SecurityHeadersMiddleware`: HSTS, ``nosniff``, ``Referrer-Policy`` ... with safe
  defaults, never overriding a header the app set.

Pure ASGI, no optional dependency.
"""

from asgi_kit.guards.body_limit import BodyLimitMiddleware, BodyTooLargeError, parse_content_length
from asgi_kit.guards.security_headers import SecurityHeadersMiddleware
from asgi_kit.guards.timeout import TimeoutMiddleware

__all__ = [
    "BodyLimitMiddleware",
    "BodyTooLargeError",
    "SecurityHeadersMiddleware",
    "TimeoutMiddleware",
    "parse_content_length",
]
