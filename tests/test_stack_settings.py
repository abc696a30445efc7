"""Stack.from_settings: the recommended order, only what is enabled, collaborators injectable."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from asgi_kit import Stack
from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit.auth import APIKeyRecord, AuthMiddleware, InMemoryAPIKeyStore, JWTManager, generate_api_key
from asgi_kit.auth.apikey import hash_api_key, parse_api_key
from asgi_kit.budget import BudgetMiddleware, InMemoryBudgetStore
from asgi_kit.config import load_settings
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import BodyLimitMiddleware, SecurityHeadersMiddleware, TimeoutMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware
from asgi_kit.ratelimit import RateLimitMiddleware
from asgi_kit.testing import run_lifespan
from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import bare_app

SECRET = "s" * 40


def test_nothing_enabled_gives_problem_details_only() -> None:
    """With every section disabled the stack holds just the error layer."""
    assert [m.cls for m in Stack.from_settings(load_settings())] == [ProblemDetailsMiddleware]


def test_everything_enabled_in_the_documented_order() -> None:
    """All concerns enabled: layers in the order docs/stack.md justifies."""
    settings = load_settings(
        logging={"enabled": True},
        tracing={"enabled": True, "exporter": "none"},
        metrics={"enabled": True},
        guards={"enabled": True, "timeout": 5, "max_body_size": 1024},
        jwt={"enabled": True, "secret": SECRET, "issuer": "i", "audience": "a"},
        api_keys={"enabled": True},
        ratelimit={"enabled": True, "requests_per_minute": 600},
        budget={"enabled": True},
    )
    stack = Stack.from_settings(
        settings,
        api_key_store=InMemoryAPIKeyStore(),
        budget_store=InMemoryBudgetStore(),
        logger=new_logger("t"),
    )
    assert [m.cls for m in stack] == [
        LifespanHooksMiddleware,
        RequestIDMiddleware,
        TracingMiddleware,
        LoggingMiddleware,
        MetricsMiddleware,
        ProblemDetailsMiddleware,
        SecurityHeadersMiddleware,
        TimeoutMiddleware,
        BodyLimitMiddleware,
        AuthMiddleware,
        RateLimitMiddleware,
        BudgetMiddleware,
    ]
    auth = next(m for m in stack if m.cls is AuthMiddleware)
    assert isinstance(auth.kwargs["jwt"], JWTManager)
    stack.wrap(bare_app())  # every layer builds


def test_provider_settings_become_the_jwt_provider_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """jwt.provider from the environment reaches JWTConfig as a ProviderProfile with the same fields."""
    monkeypatch.setenv("ASGI_KIT_JWT__PROVIDER__ROLES_CLAIM", "realm_access.roles")
    monkeypatch.setenv("ASGI_KIT_JWT__PROVIDER__ROLE_MAP", '{"platform-admin": "org_admin"}')
    settings = load_settings(jwt={"enabled": True, "secret": SECRET, "issuer": "i", "audience": "a"})
    stack = Stack.from_settings(settings, logger=new_logger("t"))
    manager = next(m for m in stack if m.cls is AuthMiddleware).kwargs["jwt"]
    assert manager.config.provider.roles_claim == "realm_access.roles"
    assert manager.config.provider.role_map == {"platform-admin": "org_admin"}
    assert manager.config.provider.typ == ("at+jwt", "JWT")


def test_missing_collaborators_are_named() -> None:
    """API keys or budgets without a database or an injected store fail, naming the fix."""
    with pytest.raises(ValueError, match="api_key_store"):
        Stack.from_settings(load_settings(api_keys={"enabled": True}))
    with pytest.raises(ValueError, match="budget_store"):
        Stack.from_settings(load_settings(budget={"enabled": True}))
    with pytest.raises(TypeError, match="KitSettings"):
        Stack.from_settings({"logging": {}})  # type: ignore[arg-type]


async def test_built_stack_serves_requests_end_to_end() -> None:
    """A stack from settings authenticates API keys, logs, and enforces the budget."""
    key = generate_api_key()
    store = InMemoryAPIKeyStore(
        [
            APIKeyRecord(
                key_id=parse_api_key(key).key_id,
                org_id="o1",
                user_id=None,
                role="org_user",
                key_hash=hash_api_key(key),
            )
        ]
    )
    budgets = InMemoryBudgetStore([("o1", 0)])
    log = io.StringIO()
    settings = load_settings(
        logging={"enabled": True}, api_keys={"enabled": True}, budget={"enabled": True, "cache_ttl": 0}
    )
    app = Stack.from_settings(
        settings, api_key_store=store, budget_store=budgets, logger=new_logger("e2e", stream=log)
    )
    app = app.wrap(bare_app())
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/ok")).status_code == 401
        over = await client.get("/ok", headers={"X-API-Key": key})
        assert over.status_code == 429
        budgets.set_budget("o1", 100)
        ok = await client.get("/ok", headers={"X-API-Key": key})
        assert ok.status_code == 200 and ok.headers["x-request-id"]
    statuses = [json.loads(line)["status"] for line in log.getvalue().splitlines()]
    assert statuses == [401, 429, 200]


async def test_database_settings_open_and_close_the_pool(database_url: str) -> None:
    """With the database enabled, the pool opens at startup and closes at shutdown."""
    settings = load_settings(
        database={"enabled": True, "url": database_url, "migrate_on_start": True},
        api_keys={"enabled": True},
        budget={"enabled": True},
        jwt={"enabled": True, "secret": SECRET, "issuer": "i", "audience": "a"},
    )
    app = Stack.from_settings(settings).wrap(bare_app())
    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_database_url_required() -> None:
    """database.enabled without a URL is refused."""
    with pytest.raises(ValueError, match=r"database\.url"):
        Stack.from_settings(load_settings(database={"enabled": True}, api_keys={"enabled": True}))


async def test_api_keys_from_postgres_follow_key_changes(database_url: str) -> None:
    """A key cached by the settings' stack is refused soon after a plain SQL revocation (the listener runs)."""
    import asyncio

    import psycopg

    from asgi_kit.database import run_migrations
    from asgi_kit.database.url import postgres_conninfo

    settings = load_settings(database={"enabled": True, "url": database_url}, api_keys={"enabled": True})
    await asyncio.to_thread(run_migrations, database_url)
    key = generate_api_key("sk")
    parsed = parse_api_key(key)
    async with await psycopg.AsyncConnection.connect(
        postgres_conninfo(database_url), autocommit=True
    ) as conn:
        await conn.execute(
            "INSERT INTO api_keys (id, key_hash, role) VALUES (%s, %s, 'org_user')",
            (parsed.key_id, hash_api_key(key)),
        )
        app = Stack.from_settings(settings).wrap(bare_app())
        messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        sent: list[str] = []
        started = asyncio.Event()

        async def send(message: dict[str, str]) -> None:
            sent.append(message["type"])
            started.set()

        lifespan = asyncio.create_task(app({"type": "lifespan"}, messages.get, send))
        await messages.put({"type": "lifespan.startup"})
        await asyncio.wait_for(started.wait(), 10)
        assert sent == ["lifespan.startup.complete"]
        headers = {"x-api-key": key}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/ok", headers=headers)).status_code == 200
            await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (parsed.key_id,))
            status = 200
            for _ in range(50):
                status = (await client.get("/ok", headers=headers)).status_code
                if status == 401:
                    break
                await asyncio.sleep(0.05)
            assert status == 401
        await messages.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
