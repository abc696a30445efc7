"""Reservations across processes: 50 concurrent requests through two uvicorn workers against one budget."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgi_kit.budget import BudgetReservations, ReservationRefusedError
from asgi_kit.database import PostgresLeaseStore, PostgresPool, PostgresUsageStore
from tests.database.conftest import new_org_id
from tests.harness.servers import _wait_listening, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKERS, CONCURRENCY = 2, 50


@contextmanager
def workers(url: str, org_id: str) -> Iterator[list[str]]:
    """Two uvicorn processes serving tests.database.lease_worker; stopped with SIGTERM (graceful)."""
    ports = [free_port() for _ in range(WORKERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.database.lease_worker", url, org_id, str(port), str(seed)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, port in enumerate(ports)
    ]
    try:
        for port in ports:
            _wait_listening(port, time.monotonic() + 30)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            # uvicorn re-raises the SIGTERM it handled once its shutdown (lifespan included) is done
            assert proc.returncode in (0, -signal.SIGTERM), err


async def wave(bases: list[str], rng: random.Random) -> list[httpx.Response]:
    """CONCURRENCY requests at once, alternating between the workers, each with a random max_tokens."""
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{bases[i % len(bases)]}/v1/chat/completions",
                    json={"prompt": "x" * rng.randint(1, 40), "max_tokens": rng.randint(50, 300)},
                )
                for i in range(CONCURRENCY)
            )
        )


@pytest.mark.parametrize("budget", [1500, 6000, 1_000_000])
async def test_fifty_concurrent_requests_never_overrun_the_budget(
    pool: PostgresPool, migrated_url: str, budget: int
) -> None:
    """Recorded usage never exceeds the budget (the bound is 0), refusals are 429, leases go back at shutdown."""
    usage, leases = PostgresUsageStore(pool), PostgresLeaseStore(pool)
    org = new_org_id()
    await usage.create_organization(org, org, budget_tokens_monthly=budget)
    rng = random.Random(budget)
    responses: list[httpx.Response] = []
    stats: list[dict[str, Any]] = []
    with workers(migrated_url, org) as bases:
        for _ in range(3):  # three waves: the budget runs out during one of them
            responses += await wave(bases, rng)
            state = await usage.get_budget(org)
            assert state is not None and state.used <= budget
        async with httpx.AsyncClient(timeout=10) as client:
            stats = [(await client.get(f"{base}/stats")).json() for base in bases]
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    if budget < 150 * 340:  # the worst cases add up past the budget: some calls are refused
        assert statuses[429] > 0 and statuses[200] > 0
    else:
        assert statuses == {200: 150}
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in responses if r.status_code == 429)
    served = sum(r.json()["usage"] for r in responses if r.status_code == 200)
    state = await usage.get_budget(org)
    assert state is not None
    # exact and within the budget: every served token recorded once, and no overrun at all
    assert state.used == served == await usage.usage_total(org)
    assert state.used <= budget
    # the database saw a statement per chunk, not per request: a couple per worker while the budget
    # is roomy; near its end chunks shrink and each smaller refused size asks once more
    assert sum(s["reservations"] for s in stats) == statuses[200]
    statements = sum(s["statements"] for s in stats)
    assert statements <= 3 * WORKERS if budget == 1_000_000 else statements < len(responses) / 3, stats
    # both workers returned their leases at shutdown
    assert await leases.leases(org) == {}
    if os.environ.get("ASGI_KIT_REPORT"):
        print(f"budget={budget} used={state.used} statuses={dict(statuses)} stats={stats}")


async def test_calls_in_flight_at_a_sigkill_stay_charged_until_the_lease_expires(
    pool: PostgresPool, migrated_url: str
) -> None:
    """A worker killed mid-call leaves its reservations charged; after its lease ttl the budget frees itself."""
    usage, leases = PostgresUsageStore(pool), PostgresLeaseStore(pool)
    org = new_org_id()
    budget, ttl = 10_000, 2.0
    await usage.create_organization(org, org, budget_tokens_monthly=budget)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.database.lease_worker",
            migrated_url,
            org,
            str(port),
            "0",
            str(ttl),
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, time.monotonic() + 30)
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [
                asyncio.create_task(
                    client.post(
                        f"http://127.0.0.1:{port}/v1/chat/completions",
                        json={"prompt": "x" * 10, "max_tokens": 500},
                    )
                )
                for _ in range(5)
            ]
            for _ in range(100):  # until the worker leased its chunk and the calls are upstream
                if await leases.leases(org):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            proc.kill()  # SIGKILL: no settle, no lease return
            proc.wait(timeout=10)
            done = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    served = [r for r in done if isinstance(r, httpx.Response)]
    state = await usage.get_budget(org)
    assert state is not None and state.used == sum(r.json()["usage"] for r in served)
    (dead, charged), *others = (await leases.leases(org)).items()
    assert not others and charged >= (5 - len(served)) * 510  # every call cut short is still reserved
    survivor = BudgetReservations(leases, refusal_ttl=0, holder="survivor")
    try:
        with pytest.raises(ReservationRefusedError):
            await survivor.reserve(org, budget - state.used - charged + 1)
        await asyncio.sleep(ttl + 0.5)
        whole = await survivor.reserve(org, budget - state.used)  # the dead holder's lease expired
        assert dead not in await leases.leases(org)
        whole.release()
    finally:
        await survivor.aclose()
    assert await leases.leases(org) == {}
