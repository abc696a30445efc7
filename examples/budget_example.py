"""Token budgets and health probes around a bare ASGI "completions" app.

In memory by default; with ``ASGI_KIT_DATABASE__URL`` set, budgets live in PostgreSQL (the
schema is migrated on startup) and ``/health/readyz`` checks the database. Run it and try it::

    python examples/budget_example.py
    curl -i -X POST -H 'x-org: acme' http://127.0.0.1:8000/v1/chat/completions   # 200, spends 50 tokens
    # ... the third call answers 429 insufficient_quota (budget: 100 tokens)
    curl -i http://127.0.0.1:8000/health/readyz

The ``x-org`` header stands in for ``AuthMiddleware`` so the example runs without keys.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from asgi_kit.auth import Principal, get_principal, set_principal
from asgi_kit.budget import BudgetMiddleware, BudgetStore, InMemoryBudgetStore
from asgi_kit.health import HealthCheck, health_app
from asgi_kit.models import Usage
from asgi_kit.types import ASGIApp, Receive, Scope, Send

ORG, BUDGET, TOKENS_PER_CALL = "acme", 100, 50


def completions(store: BudgetStore) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        principal = get_principal(scope)
        org_id = principal.org_id if principal is not None and principal.org_id else ORG
        state = await store.record_usage(Usage(org_id=org_id, model="demo", prompt_tokens=TOKENS_PER_CALL))
        body = json.dumps({"usage": {"total_tokens": TOKENS_PER_CALL}, "remaining": state.remaining}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def demo_principal(app: ASGIApp) -> ASGIApp:
    """Stand-in for AuthMiddleware: ``x-org`` names the caller's organization."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-org":
                    set_principal(
                        scope,
                        Principal(
                            user_id=None, org_id=value.decode(), role="org_user", auth_method="api_key"
                        ),
                    )
        await app(scope, receive, send)

    return layer


def build_app(
    store: BudgetStore,
    checks: dict[str, HealthCheck] | None = None,
    lifespan: AbstractAsyncContextManager[object] | None = None,
) -> ASGIApp:
    api = demo_principal(
        BudgetMiddleware(
            # no cache, so the demo refuses the very next call; production keeps a short one (1 s default)
            completions(store),
            store=store,
            openai_paths=["/v1/*"],
            cache_ttl=0,
        )
    )
    health = health_app(checks or {})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            if lifespan is None:
                await send({"type": "lifespan.startup.complete"})
                await receive()
            else:
                async with lifespan:
                    await send({"type": "lifespan.startup.complete"})
                    await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "http" and scope["path"].startswith("/health/"):
            await health({**scope, "root_path": scope.get("root_path", "") + "/health"}, receive, send)
            return
        await api(scope, receive, send)

    return app


def from_environment() -> ASGIApp:
    url = os.environ.get("ASGI_KIT_DATABASE__URL")
    if not url:
        return build_app(InMemoryBudgetStore([(ORG, BUDGET)]))
    from asgi_kit.database import (
        DatabaseError,
        PostgresUsageStore,
        check_database_health,
        create_postgres_pool,
        postgres_lifespan,
    )

    pool = create_postgres_pool(url, max_size=5, timeout=2.0)
    store = PostgresUsageStore(pool)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with postgres_lifespan(pool, migrate=True):
            if await store.get_budget(ORG) is None:
                with contextlib.suppress(DatabaseError):  # another replica created it first
                    await store.create_organization(ORG, ORG, budget_tokens_monthly=BUDGET)
            yield

    return build_app(store, {"database": lambda: check_database_health(pool)}, lifespan())


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(from_environment(), host="127.0.0.1", port=8000)
