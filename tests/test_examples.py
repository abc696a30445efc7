"""The per-framework examples wrap their apps with the same stack and behave the same."""

from __future__ import annotations

import importlib

import httpx
import pytest


@pytest.mark.parametrize("name", ["bare_app", "starlette_app", "fastapi_app", "litestar_app"])
async def test_example_behaves_the_same(name: str) -> None:
    """401 problem without a token; 200 with the principal, a request id and metrics with it."""
    module = importlib.import_module(f"examples.{name}")
    transport = httpx.ASGITransport(app=module.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        anonymous = await client.get("/hello")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        ok = await client.get("/hello", headers={"Authorization": f"Bearer {module.TOKEN}"})
        assert ok.status_code == 200 and ok.json() == {"hello": "dev-user"}
        assert ok.headers["x-request-id"] and ok.headers["x-content-type-options"] == "nosniff"
        missing = await client.get("/missing", headers={"Authorization": f"Bearer {module.TOKEN}"})
        assert missing.status_code == 404 and missing.json()["request_id"] == missing.headers["x-request-id"]
        metrics = await client.get("/metrics")
        assert 'route="/hello"' in metrics.text
