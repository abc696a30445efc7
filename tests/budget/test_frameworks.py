"""BudgetMiddleware around the same app under bare ASGI, Starlette, FastAPI and Litestar, and uvicorn."""

from __future__ import annotations

import httpx
import pytest

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget import BudgetMiddleware, InMemoryBudgetStore
from asgi_kit.models import Usage
from tests.harness.apps import FRAMEWORKS, build_app
from tests.harness.servers import serve


def with_org(app: ASGIApp) -> ASGIApp:
    """A stand-in for AuthMiddleware: the x-org header names the principal's organization."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope["headers"]:
                if name == b"x-org":
                    set_principal(
                        scope, Principal(user_id="u", org_id=value.decode(), role="r", auth_method="jwt")
                    )
        await app(scope, receive, send)

    return layer


async def stack(framework: str) -> ASGIApp:
    store = InMemoryBudgetStore([("rich", 100), ("broke", 10)])
    await store.record_usage(Usage(org_id="broke", model="m", prompt_tokens=10))
    return with_org(BudgetMiddleware(build_app(framework), store=store, openai_paths=["/v1/*"]))


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_budget_under_each_framework(framework: str) -> None:
    """Under budget reaches the route; over budget is a 429 problem before it; excluded orgs pass."""
    app = await stack(framework)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        rich = await client.get("/ok", headers={"x-org": "rich"})
        broke = await client.get("/ok", headers={"x-org": "broke"})
        anonymous = await client.get("/ok")
        missing = await client.get("/nope", headers={"x-org": "broke"})
    assert rich.status_code == 200
    assert broke.status_code == 429
    assert broke.headers["x-should-retry"] == "false"
    assert broke.json()["title"] == "Budget Exceeded"
    assert anonymous.status_code == 200
    assert missing.status_code == 429  # refused before routing: no 404 leaks that the path is unknown


@pytest.mark.integration
async def test_budget_under_uvicorn() -> None:
    """Over real sockets the 429 and the streamed SSE route behave as in-process."""
    app = await stack("starlette")
    with serve(app, "uvicorn") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
            broke = await client.get("/ok", headers={"x-org": "broke"})
            stream = await client.get("/stream", headers={"x-org": "rich"})
    assert broke.status_code == 429 and "retry-after" not in broke.headers
    assert stream.status_code == 200 and stream.text.count("data:") >= 1
