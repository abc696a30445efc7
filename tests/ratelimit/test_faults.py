"""Redis stopped and started under a served app: no 500, the policy holds, limiting resumes by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.harness.servers import serve
from tests.ratelimit.load_app import create
from tests.ratelimit.redis_harness import PrivateRedis

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIMIT = 5


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def burst(client: httpx.AsyncClient, url: str, key: str, count: int) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.get(url, headers={"x-key": key}) for _ in range(count))))


@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_redis_stopped_and_started_mid_run(redis_server: PrivateRedis, policy: str) -> None:
    """While Redis is down every request gets the policy's answer (200 or 503), never a 500; then limits apply again."""
    env = {
        "RL_REDIS_URL": redis_server.url,
        "RL_PREFIX": "faults:",
        "RL_WINDOW": "60",
        "RL_RPM": str(LIMIT),
        "RL_ON_ERROR": policy,
    }
    app = create(env)
    with serve(app) as server:

        async def run() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                before = await burst(client, "/", "req-a", 3)
                assert sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in before) == [2, 3, 4]
                redis_server.stop()
                down: list[httpx.Response] = []
                for _ in range(5):  # several rounds: the fast-fail interval passes in between
                    down += await burst(client, "/", "req-a", 8)
                    await asyncio.sleep(0.1)
                expected = 200 if policy == "allow" else 503
                assert {r.status_code for r in down} == {expected}
                if policy == "allow":
                    assert all("x-ratelimit-limit-requests" not in r.headers for r in down)
                else:
                    assert all(r.headers["retry-after"] == "1" for r in down)
                    assert down[0].headers["content-type"] == "application/problem+json"
                redis_server.start()  # empty: a Redis without persistence forgets its counts
                await asyncio.sleep(0.3)  # past the backend's retry_interval (0.2 s)
                after = [await client.get("/", headers={"x-key": "req-a"}) for _ in range(LIMIT + 2)]
                assert [r.status_code for r in after] == [200] * LIMIT + [429, 429]
                assert after[-1].headers["retry-after"] == "60"

        asyncio.run(run())
