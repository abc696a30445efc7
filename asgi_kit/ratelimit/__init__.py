"""Rate limits per API key, organization or any subject, the way OpenAI's API sets them.

``RateLimitMiddleware`` limits requests and tokens per window (a minute by default) with an
exact sliding-window log, sends OpenAI's ``x-ratelimit-*`` headers and refuses with a
retryable ``429``. Counts live in this process (:class:`InMemoryBackend`, no dependency) or in
Redis (:class:`RedisBackend`, the ``ratelimit`` extra: ``pip install 'asgi-kit[ratelimit]'``;
redis-py is imported only when a ``RedisBackend`` is made).
"""

from asgi_kit.ratelimit.algorithm import Check, CheckResult, Decision, SlidingWindowLog
from asgi_kit.ratelimit.backends import InMemoryBackend, RateLimitBackend, RateLimitBackendError
from asgi_kit.ratelimit.duration import format_duration, parse_duration
from asgi_kit.ratelimit.estimate import estimate_openai_tokens
from asgi_kit.ratelimit.limits import Quota, QuotaLookup, SubjectFunc
from asgi_kit.ratelimit.middleware import RateLimitMiddleware, TokenEstimate
from asgi_kit.ratelimit.redis_backend import RedisBackend
from asgi_kit.ratelimit.reservation import TokenReservation, get_token_reservation

__all__ = [
    "Check",
    "CheckResult",
    "Decision",
    "InMemoryBackend",
    "Quota",
    "QuotaLookup",
    "RateLimitBackend",
    "RateLimitBackendError",
    "RateLimitMiddleware",
    "RedisBackend",
    "SlidingWindowLog",
    "SubjectFunc",
    "TokenEstimate",
    "TokenReservation",
    "estimate_openai_tokens",
    "format_duration",
    "get_token_reservation",
    "parse_duration",
]
