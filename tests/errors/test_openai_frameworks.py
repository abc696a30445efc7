"""The framework adapters follow the route mark: OpenAI's error shape under Starlette, FastAPI, Litestar."""

from __future__ import annotations

import importlib

import httpx
import pytest

from asgi_kit._asgi.types import ASGIApp
from asgi_kit.errors import ProblemDetailsMiddleware
from tests.harness.apps import build_app

FRAMEWORKS = ("starlette", "fastapi", "litestar")


def marked_app(framework: str) -> ASGIApp:
    handlers = importlib.import_module(f"asgi_kit.integrations.{framework}").problem_exception_handlers()
    app = build_app(framework, exception_handlers=handlers)
    return ProblemDetailsMiddleware(app, reraise=False, openai_paths=["/missing", "/boom", "/items/*"])


async def get(app: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_framework_errors_follow_the_mark(framework: str) -> None:
    """The framework's own 404, validation error and 500 are OpenAI errors on marked routes, problems elsewhere."""
    app = marked_app(framework)
    for path, status, error_type in (
        ("/missing", 404, "invalid_request_error"),
        ("/items/abc", None, "invalid_request_error"),
        ("/boom", 500, "server_error"),
    ):
        response = await get(app, path)
        assert status is None or response.status_code == status
        assert response.headers["content-type"] == "application/json", (framework, path)
        assert response.headers["cache-control"] == "no-store"
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == error_type
        assert "s3cr3t" not in response.text
    elsewhere = await get(app, "/nowhere")
    assert elsewhere.status_code == 404
    assert elsewhere.headers["content-type"] == "application/problem+json"
