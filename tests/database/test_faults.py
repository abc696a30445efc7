"""Faults under traffic: dead backends, an exhausted pool, mass cancellation, secrets in logs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget import BudgetMiddleware
from asgi_kit.database import PostgresPool, PostgresUsageStore, new_postgres_pool
from asgi_kit.testing import RecordingSend, StrictReceive, make_scope
from tests.database.conftest import PASSWORD, admin_execute, database_name, new_org_id, terminate_backends

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEAKS = (PASSWORD, "postgresql://", "terminating connection", "psycopg", "server closed", "consuming input")


def build_app(
    store: PostgresUsageStore, org_id: str, release: asyncio.Event | None = None
) -> tuple[ASGIApp, list[int]]:
    """Principal for ``org_id`` -> BudgetMiddleware(no cache) -> an app that optionally waits."""
    reached: list[int] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(1)
        if release is not None:
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    budget = BudgetMiddleware(inner, store=store, cache_ttl=0)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        set_principal(scope, Principal(user_id="u", org_id=org_id, role="org_user", auth_method="api_key"))
        await budget(scope, receive, send)

    return app, reached


async def new_org(store: PostgresUsageStore) -> str:
    org = new_org_id()
    await store.create_organization(org, org, budget_tokens_monthly=10**9)
    return org


def assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


async def test_terminated_backends_give_clean_503_then_recover(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Killing every backend mid-traffic: clean 503 problems in the window, then 200s without a restart."""
    pool = await new_postgres_pool(migrated_url, min_size=4, max_size=4, timeout=3)
    store = PostgresUsageStore(pool)
    app, _ = build_app(store, await new_org(store))
    results: list[tuple[int, str, bytes]] = []
    stop = asyncio.Event()

    async def traffic(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            response = await client.get("/v1/models")
            results.append((response.status_code, response.headers.get("content-type", ""), response.content))

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        workers = [asyncio.create_task(traffic(client)) for _ in range(16)]
        try:

            async def faults() -> None:
                while len(results) < 50:
                    await asyncio.sleep(0.01)
                for _ in range(40):  # kill until a request is caught mid-query
                    await asyncio.to_thread(terminate_backends, migrated_url)
                    await asyncio.sleep(0.02)
                    if any(status == 503 for status, _, _ in results):
                        break
                after = len(results)
                while len(results) < after + 200:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(faults(), 60)
            recovered_from = len(results) - 100
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 30)
    await pool.close()
    statuses = {status for status, _, _ in results}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses
    for status, content_type, body in results:
        if status == 503:
            assert content_type == "application/problem+json"
            assert_clean(body.decode())
    assert all(status == 200 for status, _, _ in results[recovered_from:])
    assert PASSWORD not in caplog.text
    assert "postgresql://" not in caplog.text


async def test_pool_exhaustion_is_503_with_retry_after(migrated_url: str) -> None:
    """With every connection held, a request waits the pool timeout, then gets 503 + Retry-After."""
    pool = await new_postgres_pool(migrated_url, min_size=1, max_size=1, timeout=0.5)
    store = PostgresUsageStore(pool)
    app, reached = build_app(store, await new_org(store))
    try:
        async with pool.connection():
            started = time.monotonic()
            send = RecordingSend()
            await asyncio.wait_for(app(make_scope("/v1/x"), StrictReceive(), send), 10)
            elapsed = time.monotonic() - started
        assert send.status == 503
        assert send.header("retry-after") == "1"
        assert send.header("content-type") == "application/problem+json"
        assert_clean(send.body.decode())
        assert elapsed >= 0.45
        assert reached == []
        after = RecordingSend()
        await app(make_scope("/v1/x"), StrictReceive(), after)
        assert after.status == 200
    finally:
        await pool.close()


async def wait_settled(pool: PostgresPool, size: int) -> dict[str, int]:
    async def settled() -> dict[str, int]:
        while True:
            stats = pool.get_stats()
            if (
                stats["pool_available"] == stats["pool_size"] == size
                and stats.get("requests_waiting", 0) == 0
            ):
                return stats
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(settled(), 20)


async def test_cancelling_1000_in_flight_requests_leaks_nothing(migrated_url: str) -> None:
    """1,000 requests cancelled in the pool queue, mid-query and in the app: every connection returns."""
    pool = await new_postgres_pool(migrated_url, min_size=5, max_size=5, timeout=30)
    store = PostgresUsageStore(pool)
    release = asyncio.Event()
    app, reached = build_app(store, await new_org(store), release)
    try:
        tasks = [
            asyncio.create_task(app(make_scope("/v1/x"), StrictReceive(), RecordingSend()))
            for _ in range(1000)
        ]

        async def some_reached_the_app() -> None:
            while len(reached) < 50:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(some_reached_the_app(), 30)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
        stats = await wait_settled(pool, 5)
        assert stats["pool_size"] == 5
        server = admin_execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active'",
            (database_name(migrated_url),),
        )
        assert server[0][0] == 0
        release.set()
        send = RecordingSend()
        await asyncio.wait_for(app(make_scope("/v1/x"), StrictReceive(), send), 10)
        assert send.status == 200
    finally:
        release.set()
        await pool.close()


async def test_password_never_logged_through_a_fault_cycle(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Open, serve, lose every backend, fail and recover: no log record holds the password or URL."""
    caplog.set_level(logging.DEBUG)
    pool = await new_postgres_pool(migrated_url, min_size=2, max_size=2, timeout=1)
    store = PostgresUsageStore(pool)
    app, _ = build_app(store, await new_org(store))
    messages: list[Any] = []
    for _ in range(3):
        terminate_backends(migrated_url)
        send = RecordingSend()
        await app(make_scope("/v1/x"), StrictReceive(), send)
        messages.append(send.body)
    await pool.close()
    closed = RecordingSend()
    await app(make_scope("/v1/x"), StrictReceive(), closed)
    assert closed.status == 503
    assert_clean(closed.body.decode())
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert PASSWORD not in text and "postgresql://" not in text
