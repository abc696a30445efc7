"""Two uvicorn servers with two workers each, sharing Redis, under load against one key's limit.

The issue asks for 60 s of load against 600 requests a minute. By default this runs a 20 s window
with a limit of 200 (the same rate, 600 a minute, a third of the time); set
``ASGI_KIT_RATELIMIT_LOAD_WINDOW=60`` for the full minute. The load is four times the limit's
rate, spread evenly over both servers, for the window less half a second: a sliding window
must then admit exactly the limit (the issue allows 1 %), and every refusal must say when the
first admission leaves the window.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness.servers import free_port
from tests.ratelimit.redis_harness import delete_prefix, new_prefix, require_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = float(os.environ.get("ASGI_KIT_RATELIMIT_LOAD_WINDOW", "20"))
RPM_LIMIT = round(600 * WINDOW / 60)  # 600 a minute, scaled to the window
TPM_LIMIT = round(6_000 * WINDOW / 60)  # 6,000 tokens a minute: about 600 calls of 10
LOAD_FACTOR = 4
ROOT = Path(__file__).resolve().parents[2]


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "tests.ratelimit.load_app:app", "--workers", "2",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError("uvicorn did not start")


@pytest.fixture(scope="module")
def servers() -> Iterator[list[str]]:
    url = require_redis()
    prefix = new_prefix()
    env = {**os.environ, "RL_REDIS_URL": url, "RL_PREFIX": prefix, "RL_WINDOW": str(WINDOW)}
    env.update({"RL_RPM": str(RPM_LIMIT), "RL_TPM": str(TPM_LIMIT)})
    ports = [free_port(), free_port()]
    procs = [_start(port, env) for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for base, proc in zip(urls, procs, strict=True):
            _wait_ready(base, proc)
        yield urls
    finally:
        for proc in procs:
            _stop(proc)
        delete_prefix(url, prefix)


@dataclass
class Sample:
    sent: float
    received: float
    status: int
    headers: httpx.Headers
    tokens: int


async def run_load(urls: list[str], key: str, rate: float, costs: list[int]) -> list[Sample]:
    """Send ``len(costs)`` requests at ``rate`` a second, alternating servers; record each outcome."""
    samples: list[Sample] = []
    # A connection per request: a kept-alive connection stays with the worker that accepted it,
    # and the test is about every worker of both servers sharing one count.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        start = time.monotonic()

        async def one(i: int) -> None:
            await asyncio.sleep(max(start + i / rate - time.monotonic(), 0))
            sent = time.monotonic()
            if sent > start + WINDOW - 0.3:  # a loaded client fell behind: stay inside one window
                return
            response = await client.get(
                urls[i % len(urls)], headers={"x-key": key, "x-tokens": str(costs[i])}
            )
            samples.append(Sample(sent, time.monotonic(), response.status_code, response.headers, costs[i]))

        await asyncio.gather(*(one(i) for i in range(len(costs))))
    return sorted(samples, key=lambda s: s.sent)


def check_refusals(refused: list[Sample]) -> None:
    """Every refusal is a retryable 429 whose Retry-After is its retry-after-ms rounded up."""
    for sample in refused:
        assert sample.status == 429, sample.status
        retry_ms = int(sample.headers["retry-after-ms"])
        assert 0 < retry_ms <= WINDOW * 1000
        assert sample.headers["retry-after"] == str(math.ceil(retry_ms / 1000))
        assert "x-should-retry" not in sample.headers


def test_requests_per_minute_across_workers_and_hosts(servers: list[str]) -> None:
    """Exactly the limit is admitted across 2 servers x 2 workers; each refusal names when the first admission leaves."""
    rate = LOAD_FACTOR * RPM_LIMIT / WINDOW
    count = int(rate * (WINDOW - 0.5))
    samples = asyncio.run(run_load(servers, f"req-{random.getrandbits(32)}", rate, [0] * count))
    first = next(s for s in samples if s.status == 200)
    # What the server surely decided within one window of the first admission (a response slower
    # than the 0.3 s margin could fall after it, on a badly loaded machine: leave those out).
    in_window = [s for s in samples if s.received < first.sent + WINDOW]
    admitted = [s for s in in_window if s.status == 200]
    refused = [s for s in in_window if s.status != 200]
    assert abs(len(admitted) - RPM_LIMIT) <= RPM_LIMIT * 0.01, (len(admitted), RPM_LIMIT)
    assert len(admitted) == RPM_LIMIT  # a sliding window is exact
    assert len({s.headers["x-pid"] for s in admitted}) >= 3  # the workers of both servers took part
    check_refusals(refused)
    tolerance = 0.1  # Redis time is in whole milliseconds, plus scheduling
    for sample in refused:
        retry = int(sample.headers["retry-after-ms"]) / 1000
        # the server's "now" lies within [sent, received], its first admission within first's
        assert sample.sent + retry <= first.received + WINDOW + tolerance
        assert sample.received + retry >= first.sent + WINDOW - tolerance
    remaining = [int(s.headers["x-ratelimit-remaining-requests"]) for s in admitted]
    assert len(samples) > 2 * RPM_LIMIT  # the load really was above the limit
    assert sorted(remaining, reverse=True) == list(range(RPM_LIMIT - 1, -1, -1))


def test_tokens_per_minute_across_workers_and_hosts(servers: list[str]) -> None:
    """Admitted tokens fill the limit within 1 % and never exceed it; refusals carry a consistent Retry-After."""
    rng = random.Random(16)
    mean_cost = 10
    rate = LOAD_FACTOR * TPM_LIMIT / mean_cost / WINDOW
    count = int(rate * (WINDOW - 0.5))
    costs = [rng.randint(1, 2 * mean_cost - 1) for _ in range(count)]
    samples = asyncio.run(run_load(servers, f"tok-{random.getrandbits(32)}", rate, costs))
    first = next(s for s in samples if s.status == 200)
    in_window = [s for s in samples if s.received < first.sent + WINDOW]
    admitted = [s for s in in_window if s.status == 200]
    refused = [s for s in in_window if s.status != 200]
    tokens = sum(s.tokens for s in admitted)
    assert TPM_LIMIT * 0.99 <= tokens <= TPM_LIMIT, (tokens, TPM_LIMIT)
    check_refusals(refused)
    last = admitted[-1]
    for sample in refused:
        release = int(sample.headers["retry-after-ms"]) / 1000
        # room comes back when some admission leaves the window: between the first's and the last's
        assert sample.sent + release <= last.received + WINDOW + 0.1
        assert sample.received + release >= first.sent + WINDOW - 0.1
        assert int(sample.headers["x-ratelimit-remaining-tokens"]) < sample.tokens
