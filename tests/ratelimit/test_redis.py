"""RedisBackend against a real Redis: one round trip per request, the same answers as in memory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator

import pytest

from asgi_kit.ratelimit import Check, RateLimitBackendError, RedisBackend
from tests.ratelimit.redis_harness import (
    PrivateRedis,
    counting_connection_class,
    delete_prefix,
    new_prefix,
    require_redis,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> Iterator[str]:
    url = require_redis()
    value = new_prefix()
    yield value
    delete_prefix(url, value)


@pytest.fixture
async def counted(prefix: str) -> AsyncIterator[tuple[RedisBackend, list[int]]]:
    from redis.asyncio import ConnectionPool, Redis

    connection_class, sent = counting_connection_class()
    pool = ConnectionPool.from_url(require_redis(), connection_class=connection_class)
    client = Redis(connection_pool=pool)
    backend = RedisBackend(client, key_prefix=prefix)
    yield backend, sent
    await backend.aclose()
    await client.aclose()


async def test_one_round_trip_per_request(counted: tuple[RedisBackend, list[int]]) -> None:
    """After the script is loaded, every acquire (admitted or refused, 1 to 4 checks) is one command sent."""
    backend, sent = counted
    checks = [Check("k:requests", 3, 1, 60_000), Check("k:tokens", 1000, 10, 60_000)]
    await backend.acquire(checks)  # loads the script (NOSCRIPT -> SCRIPT LOAD -> EVALSHA) and connects
    sent[0] = 0
    decisions = [await backend.acquire(checks) for _ in range(5)]
    assert sent[0] == 5
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    four = [*checks, Check("o:requests", 100, 1, 60_000), Check("o:tokens", 10**6, 10, 60_000)]
    sent[0] = 0
    await backend.acquire(four)
    assert sent[0] == 1


async def test_answers_match_the_algorithm(prefix: str) -> None:
    """Remaining, reset, retry and NEVER as the in-memory log gives them, in Redis's own time."""
    backend = RedisBackend(url=require_redis(), key_prefix=prefix)
    try:
        check = Check("k", 2, 1, 400)
        first = await backend.acquire([check])
        assert first.allowed and first.results[0].remaining == 1 and first.results[0].reset_ms == 400
        await asyncio.sleep(0.05)
        second = await backend.acquire([check])
        assert second.allowed and second.results[0].remaining == 0
        refused = await backend.acquire([check])
        assert not refused.allowed
        assert 0 < refused.results[0].retry_ms <= 360  # when the first entry leaves the window
        assert 0 < refused.results[0].reset_ms <= 400
        too_big = await backend.acquire([Check("k2", 5, 6, 400)])
        assert not too_big.allowed and too_big.results[0].retry_ms == -1
        await asyncio.sleep(refused.results[0].retry_ms / 1000 + 0.02)
        assert (await backend.acquire([check])).allowed
        await asyncio.sleep(0.45)  # everything left the window: the log and its total start again
        again = await backend.acquire([check])
        assert again.allowed and again.results[0].remaining == 1
        # a refused request with one passing and one failing check counts nothing on either
        both = [Check("a", 10, 1, 400), Check("b", 1, 2, 400)]
        assert not (await backend.acquire(both)).allowed
        assert (await backend.acquire([Check("a", 10, 0, 400)])).results[0].remaining == 10
    finally:
        await backend.aclose()


async def test_corrections_run_in_the_background(prefix: str) -> None:
    """adjust returns at once; the correction lands before aclose returns and expires with its entry."""
    backend = RedisBackend(url=require_redis(), key_prefix=prefix)
    check = Check("t", 100, 40, 60_000)
    decision = await backend.acquire([check])
    backend.adjust(decision, 0, check, -30)
    backend.adjust(decision, 0, check, 0)  # nothing to do
    refused = await backend.acquire([Check("t", 100, 1000, 60_000)])
    backend.adjust(refused, 0, check, 5)  # a refused decision counted nothing: nothing to correct
    await backend.aclose()
    backend = RedisBackend(url=require_redis(), key_prefix=prefix)
    try:
        probe = await backend.acquire([Check("t", 100, 0, 60_000)])
        assert probe.results[0].remaining == 90
    finally:
        await backend.aclose()


async def test_pending_corrections_are_bounded(prefix: str) -> None:
    """Past max_pending_adjustments, and outside an event loop, corrections are dropped and counted."""
    backend = RedisBackend(url=require_redis(), key_prefix=prefix, max_pending_adjustments=1)
    check = Check("t", 100, 10, 60_000)
    decision = await backend.acquire([check])
    backend.adjust(decision, 0, check, 1)
    backend.adjust(decision, 0, check, 1)
    assert backend.dropped_adjustments == 1
    await asyncio.to_thread(backend.adjust, decision, 0, check, 1)
    assert backend.dropped_adjustments == 2
    await backend.aclose()


async def test_unreachable_fails_fast_then_recovers() -> None:
    """A refused connection raises RateLimitBackendError; within retry_interval no connection is tried; then it heals."""
    server = PrivateRedis()
    server.start()
    from redis.asyncio import ConnectionPool, Redis

    connection_class, sent = counting_connection_class()
    client = Redis(
        connection_pool=ConnectionPool.from_url(
            server.url, connection_class=connection_class, socket_timeout=0.5
        )
    )
    backend = RedisBackend(client, retry_interval=0.3)
    try:
        check = Check("k", 5, 1, 60_000)
        assert (await backend.acquire([check])).allowed
        server.stop()
        with pytest.raises(RateLimitBackendError) as failed:
            await backend.acquire([check])
        assert "127.0.0.1" not in str(failed.value) and failed.value.__cause__ is None
        assert backend.failures == 1
        sent[0] = 0
        with pytest.raises(RateLimitBackendError):
            await backend.acquire([check])  # inside retry_interval: no attempt at all
        assert sent[0] == 0 and backend.failures == 1
        server.start()  # a fresh, empty server on the same port (and no script loaded)
        await asyncio.sleep(0.35)
        decision = await backend.acquire([check])
        assert decision.allowed and decision.results[0].remaining == 4
    finally:
        await backend.aclose()
        await client.aclose()
        server.stop()


def test_options_are_validated() -> None:
    """Exactly one of client and url; numbers checked by type and value, naming the option."""
    url = "redis://127.0.0.1:6379/0"
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({}, ValueError, "client and url"),
        ({"url": 5}, TypeError, "url"),
        ({"url": url, "key_prefix": 5}, TypeError, "key_prefix"),
        ({"url": url, "socket_timeout": 0}, ValueError, "socket_timeout"),
        ({"url": url, "socket_timeout": "1"}, TypeError, "socket_timeout"),
        ({"url": url, "retry_interval": -1}, ValueError, "retry_interval"),
        ({"url": url, "max_connections": 0}, ValueError, "max_connections"),
        ({"url": url, "max_pending_adjustments": 1.5}, TypeError, "max_pending_adjustments"),
    ]
    for options, error, name in cases:
        with pytest.raises(error, match=name):
            RedisBackend(**options)  # type: ignore[arg-type]
    backend = RedisBackend(url=url, key_prefix="p:")
    assert repr(backend) == "RedisBackend(key_prefix='p:')" and backend.client is not None


def test_missing_redis_names_the_pip_install() -> None:
    """Without redis-py, asgi_kit.ratelimit imports, and RedisBackend says which pip install to run."""
    code = """
        import sys
        sys.modules["redis"] = None
        import asgi_kit.ratelimit as rl
        rl.RateLimitMiddleware(lambda s, r, se: None, requests_per_minute=5)
        try:
            rl.RedisBackend(url="redis://127.0.0.1:6379/0")
        except ImportError as exc:
            print(exc)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'asgi-kit[ratelimit]'" in result.stdout
