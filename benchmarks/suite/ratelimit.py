"""The rate-limit variants: ``RateLimitMiddleware`` in memory and on Redis, round trips counted.

The Redis variant counts the commands its connections send (a command is a round trip) and
checks, inside the measured app, that the request made exactly one: a request that made any
other number answers 500, which fails the variant ("N of M requests did not answer 200"). So a
run that reports the variant measured has also shown one Redis round trip per request. The
Redis URL comes from ``ASGI_KIT_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); the
keys are written under a prefix of the run's own and deleted afterwards. An unreachable Redis,
or redis-py not installed, skips the variant with a note.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Final

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from benchmarks.suite._apps import SkipVariant, bare_asgi_app, load
from benchmarks.suite.context import BenchContext

REDIS_URL_ENV: Final = "ASGI_KIT_BENCH_REDIS_URL"
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
# Never reached in a run: the variants measure the admitted path.
LIMIT: Final = 10**12


def ratelimit_memory(ctx: BenchContext) -> ASGIApp:
    """RateLimitMiddleware, requests and tokens per minute per key, InMemoryBackend."""
    (cls,) = load("asgi_kit.ratelimit", "RateLimitMiddleware")
    app: ASGIApp = cls(bare_asgi_app, requests_per_minute=LIMIT)
    return app


class _RoundTrips:
    """Fails a request (500 from the inner app) whose layer sent other than one Redis command."""

    def __init__(self, sent: list[int]) -> None:
        self.sent = sent

    def outer(self, app: ASGIApp) -> ASGIApp:
        async def mark(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("state", {})["bench.redis_sent"] = self.sent[0]
            await app(scope, receive, send)

        return mark

    def inner(self, app: ASGIApp) -> ASGIApp:
        async def verify(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and self.sent[0] - scope["state"]["bench.redis_sent"] != 1:
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"not one Redis round trip"})
                return
            await app(scope, receive, send)

        return verify


async def ratelimit_redis(ctx: BenchContext) -> ASGIApp:
    """RateLimitMiddleware on RedisBackend (one EVALSHA per request, counted)."""
    cls, backend_cls = load("asgi_kit.ratelimit", "RateLimitMiddleware", "RedisBackend")
    redis_asyncio, exceptions = load("redis", "asyncio", "exceptions")
    url = os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
    sent = [0]

    class CountingConnection(redis_asyncio.Connection):  # type: ignore[misc,name-defined]
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            sent[0] += 1
            await super().send_packed_command(command, check_health)

    pool = redis_asyncio.ConnectionPool.from_url(url, connection_class=CountingConnection, socket_timeout=2)
    client = redis_asyncio.Redis(connection_pool=pool)
    try:
        await client.ping()
    except (exceptions.RedisError, OSError):
        await client.aclose()
        raise SkipVariant(f"Redis not reachable at {url}: set {REDIS_URL_ENV}") from None
    prefix = f"asgi-kit-bench:{uuid.uuid4().hex}:"
    backend = backend_cls(client, key_prefix=prefix)

    async def cleanup() -> None:
        await backend.aclose()
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    ctx.push_async_callback(cleanup)
    # Load the script and open the connection before the check request.
    (check_cls,) = load("asgi_kit.ratelimit", "Check")
    await backend.acquire([check_cls("warm", LIMIT, 0, 60_000)])
    counter = _RoundTrips(sent)
    layer: ASGIApp = cls(counter.inner(bare_asgi_app), requests_per_minute=LIMIT, backend=backend)
    return counter.outer(layer)


__all__ = ["DEFAULT_REDIS_URL", "REDIS_URL_ENV", "ratelimit_memory", "ratelimit_redis"]
