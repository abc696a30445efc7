"""health_app mounted under Starlette, FastAPI and Litestar as the docs show."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.health import HealthStatus, health_app


def build(framework: str, health: ASGIApp) -> Any:
    if framework == "starlette":
        from starlette.applications import Starlette
        from starlette.routing import Mount

        return Starlette(routes=[Mount("/health", app=health)])
    if framework == "fastapi":
        from fastapi import FastAPI

        app = FastAPI()
        app.mount("/health", health)
        return app
    from litestar import Litestar, asgi

    @asgi("/health", is_mount=True)
    async def health_mount(scope: Scope, receive: Receive, send: Send) -> None:
        await health(scope, receive, send)

    return Litestar(route_handlers=[health_mount])


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
async def test_mounted_probes(framework: str) -> None:
    """Mounted at /health, /health/livez and /health/readyz answer; a failing check gives 503."""
    state = {"ok": True}

    async def check() -> HealthStatus:
        return HealthStatus.ok() if state["ok"] else HealthStatus.failed("down")

    app = build(framework, health_app({"dep": check}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        live = await client.get("/health/livez")
        ready = await client.get("/health/readyz")
        state["ok"] = False
        down = await client.get("/health/readyz")
    assert (live.status_code, live.json()) == (200, {"status": "pass"})
    assert ready.status_code == 200
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["checks"]["dep"]["detail"] == "down"
