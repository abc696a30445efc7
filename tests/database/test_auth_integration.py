"""AuthMiddleware with PostgresAPIKeyStore, then BudgetMiddleware with PostgresUsageStore."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from asgi_kit._asgi.principal import get_principal
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.auth import AuthMiddleware, generate_api_key, hash_api_key, parse_api_key
from asgi_kit.auth.stores import APIKeyRecord
from asgi_kit.budget import BudgetMiddleware
from asgi_kit.database import PostgresAPIKeyStore, PostgresPool, PostgresUsageStore, new_postgres_pool
from asgi_kit.models import Usage
from tests.database.conftest import PASSWORD, new_org_id

pytestmark = pytest.mark.postgres


async def test_api_key_then_budget(pool: PostgresPool) -> None:
    """A stored key authenticates, its org's budget is enforced, and the app records usage."""
    usage = PostgresUsageStore(pool)
    keys = PostgresAPIKeyStore(pool)
    org = new_org_id()
    await usage.create_organization(org, org, budget_tokens_monthly=10)
    key = generate_api_key()
    key_id = parse_api_key(key).key_id
    await keys.add(
        APIKeyRecord(key_id=key_id, org_id=org, user_id=None, role="org_user", key_hash=hash_api_key(key))
    )

    async def spend(scope: Scope, receive: Receive, send: Send) -> None:
        principal = get_principal(scope)
        assert principal is not None and principal.org_id == org
        await usage.record_usage(Usage(org_id=org, api_key_id=principal.key_id, model="m", prompt_tokens=6))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = AuthMiddleware(BudgetMiddleware(spend, store=usage, cache_ttl=0), api_keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        statuses = [(await client.get("/", headers={"x-api-key": key})).status_code for _ in range(3)]
        anonymous = await client.get("/")
    assert statuses == [200, 200, 429]
    assert anonymous.status_code == 401
    assert await usage.usage_total(org) == 12


async def test_key_store_outage_is_503_from_auth(migrated_url: str) -> None:
    """When the key store's database is gone AuthMiddleware answers 503, not 401, with no driver text."""
    pool = await new_postgres_pool(migrated_url, min_size=0, max_size=1)
    keys = PostgresAPIKeyStore(pool)
    await pool.close()

    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("unreachable")

    app = AuthMiddleware(never, api_keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/", headers={"x-api-key": generate_api_key()})
    assert response.status_code == 503
    assert PASSWORD not in response.text and "psycopg" not in response.text


async def test_budget_example_on_postgres(
    fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/budget_example.py with ASGI_KIT_DATABASE__URL migrates, seeds, enforces and checks."""
    from asgi_kit.testing import call_app, make_scope
    from examples.budget_example import ORG, from_environment

    monkeypatch.setenv("ASGI_KIT_DATABASE__URL", fresh_database())
    app = from_environment()
    startup = asyncio.Event()
    finish = asyncio.Event()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if not sent:
            return {"type": "lifespan.startup"}
        await finish.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            startup.set()

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(startup.wait(), 30)
    try:
        statuses = [
            (
                await call_app(
                    app, make_scope("/v1/chat/completions", method="POST", headers=[("x-org", ORG)])
                )
            ).status
            for _ in range(3)
        ]
        ready = await call_app(app, make_scope("/health/readyz"))
    finally:
        finish.set()
        await asyncio.wait_for(lifespan, 10)
    assert statuses == [200, 200, 429]
    assert ready.status == 200 and ready.json()["checks"]["database"]["status"] == "pass"


async def test_refresh_rotation_with_reuse_detection_across_managers(pool: PostgresPool) -> None:
    """Two JWTManagers (two workers) sharing PostgresTokenRevocationStore: a reused refresh token revokes its family."""
    from asgi_kit.auth import JWTConfig, JWTManager
    from asgi_kit.auth.errors import InvalidTokenError
    from asgi_kit.database import PostgresTokenRevocationStore

    config = JWTConfig(secret="s" * 32, issuer="iss", audience="aud")
    store = PostgresTokenRevocationStore(pool)
    worker_a = JWTManager(config, revocation_store=store)
    worker_b = JWTManager(config, revocation_store=PostgresTokenRevocationStore(pool))
    first = worker_a.generate_token_pair("u1", "org1", "org_user")
    second = await worker_a.refresh_token_pair(first.refresh_token)
    with pytest.raises(InvalidTokenError):
        await worker_b.refresh_token_pair(first.refresh_token)  # reuse, seen by the other worker
    with pytest.raises(InvalidTokenError):
        await worker_b.refresh_token_pair(second.refresh_token)  # the whole family is now revoked
