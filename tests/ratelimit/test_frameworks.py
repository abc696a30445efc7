"""RateLimitMiddleware around the same app under bare ASGI, Starlette, FastAPI and Litestar."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.ratelimit import RateLimitMiddleware
from tests.harness.apps import FRAMEWORKS, build_app, fastapi_app, starlette_app
from tests.harness.servers import serve


def with_key(app: ASGIApp) -> ASGIApp:
    """A stand-in for AuthMiddleware: the x-key header names the principal's API key."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope["headers"]:
                if name == b"x-key":
                    principal = Principal(
                        user_id=None, org_id="o", role="r", auth_method="api_key", key_id=value.decode()
                    )
                    set_principal(scope, principal)
        await app(scope, receive, send)

    return layer


async def exercise(app: ASGIApp, base_url: str = "http://t", transport: Any = None) -> None:
    transport = transport or httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=10) as client:
        first = await client.get("/ok", headers={"x-key": "k"})
        second = await client.get("/ok", headers={"x-key": "k"})
        refused = await client.get("/nope", headers={"x-key": "k"})
        other = await client.get("/ok", headers={"x-key": "other"})
        anonymous = await client.get("/ok")
    assert first.status_code == second.status_code == 200
    assert [
        first.headers["x-ratelimit-remaining-requests"],
        second.headers["x-ratelimit-remaining-requests"],
    ] == ["1", "0"]
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"  # before routing: no 404
    assert refused.json()["code"] == "rate_limit_exceeded"
    assert other.status_code == 200 and other.headers["x-ratelimit-remaining-requests"] == "1"
    assert anonymous.status_code == 200 and "x-ratelimit-limit-requests" not in anonymous.headers


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_rate_limit_under_each_framework(framework: str) -> None:
    """Wrapped around each framework's app: headers from the route, 429 before routing, keys apart."""
    await exercise(with_key(RateLimitMiddleware(build_app(framework), requests_per_minute=2)))


async def test_registered_the_frameworks_way() -> None:
    """Starlette's middleware= and FastAPI's add_middleware build the layer from its keywords."""
    from starlette.middleware import Middleware

    starlette = starlette_app(middleware=[Middleware(RateLimitMiddleware, requests_per_minute=2)])
    await exercise(with_key(starlette))
    fastapi: Any = fastapi_app()
    fastapi.add_middleware(RateLimitMiddleware, requests_per_minute=2)
    await exercise(with_key(fastapi))


@pytest.mark.integration
async def test_rate_limit_under_uvicorn() -> None:
    """Over real sockets the headers and the 429 are as in-process."""
    app = with_key(RateLimitMiddleware(build_app("starlette"), requests_per_minute=2))
    with serve(app, "uvicorn") as served:
        await exercise(app, served.url, httpx.AsyncHTTPTransport())
