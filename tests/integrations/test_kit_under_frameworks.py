"""The kit's layers installed the documented ways under Starlette, FastAPI and Litestar (docs/frameworks.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_kit import Stack
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import SecurityHeadersMiddleware, TimeoutMiddleware
from asgi_kit.integrations.fastapi import problem_exception_handlers as fastapi_handlers
from asgi_kit.integrations.litestar import problem_exception_handlers as litestar_handlers
from asgi_kit.integrations.starlette import problem_exception_handlers as starlette_handlers
from tests.harness.apps import build_app


class StateRequestID:
    """A stand-in request-id layer: writes scope["state"]["request_id"]."""

    def __init__(self, app: ASGIApp, *, request_id: str = "rid-fw") -> None:
        self.app = app
        self._request_id = request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["request_id"] = self._request_id
        await self.app(scope, receive, send)


async def fetch(app: ASGIApp, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


def starlette_with_middleware() -> ASGIApp:
    from starlette.middleware import Middleware

    return build_app(
        "starlette",
        middleware=[Middleware(StateRequestID), Middleware(SecurityHeadersMiddleware)],
        exception_handlers=starlette_handlers(),
    )


def fastapi_with_add_middleware() -> ASGIApp:
    app: Any = build_app("fastapi", exception_handlers=fastapi_handlers())
    # add_middleware puts each layer outside the previous ones: innermost first.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(StateRequestID)
    return app  # type: ignore[no-any-return]


def litestar_wrapped() -> ASGIApp:
    inner = build_app("litestar", exception_handlers=litestar_handlers())
    return Stack().use(StateRequestID).use(SecurityHeadersMiddleware).wrap(inner)


@pytest.mark.parametrize(
    ("build", "layers_see_500"),
    [(starlette_with_middleware, False), (fastapi_with_add_middleware, False), (litestar_wrapped, True)],
)
async def test_documented_installation_covers_404_405_and_500(build: Any, layers_see_500: bool) -> None:
    """Installed as documented, the layers see 404 and 405 and the handlers give the same problems.

    Under Starlette and FastAPI the unhandled-exception 500 is rendered by ServerErrorMiddleware,
    outside ``middleware=``: layers there see the exception, never that response.
    """
    app = build()
    for path, method, status in (
        ("/ok", "GET", 200),
        ("/missing", "GET", 404),
        ("/ok", "POST", 405),
        ("/boom", "GET", 500),
    ):
        response = await fetch(app, path, method)
        assert response.status_code == status
        if status != 500 or layers_see_500:
            assert response.headers["x-content-type-options"] == "nosniff"
        else:
            assert "x-content-type-options" not in response.headers
        if status != 200:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["request_id"] == "rid-fw"


async def test_litestar_define_middleware_misses_unmatched_requests() -> None:
    """Litestar's middleware= runs per route: a 404 never passes through it (why the docs say wrap)."""
    from litestar.middleware import DefineMiddleware

    app = build_app("litestar", middleware=[DefineMiddleware(SecurityHeadersMiddleware)])  # type: ignore[arg-type]
    assert (await fetch(app, "/ok")).headers.get("x-content-type-options") == "nosniff"
    missing = await fetch(app, "/missing")
    assert missing.status_code == 404
    assert "x-content-type-options" not in missing.headers


async def test_timeout_via_litestar_define_middleware() -> None:
    """Kit layers accept app= as a keyword, as Litestar's DefineMiddleware passes it."""
    from litestar.middleware import DefineMiddleware

    app = build_app("litestar", middleware=[DefineMiddleware(TimeoutMiddleware, timeout=5)])  # type: ignore[arg-type]
    assert (await fetch(app, "/ok")).status_code == 200


async def test_wrapped_starlette_unhandled_exception_reaches_outer_layer_after_start() -> None:
    """Wrapped outside Starlette, an outer ProblemDetailsMiddleware sees the handler's 500 already sent, then the exception."""
    inner = build_app("starlette", exception_handlers=starlette_handlers())
    app = ProblemDetailsMiddleware(StateRequestID(inner), reraise=False)
    response = await fetch(app, "/boom")
    assert response.status_code == 500
    assert response.json()["request_id"] == "rid-fw"


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
async def test_problem_details_in_middleware_list_gives_500_the_headers(framework: str) -> None:
    """With ProblemDetailsMiddleware innermost in middleware=, the 500 is rendered inside the other layers."""
    from starlette.middleware import Middleware

    handlers = starlette_handlers() if framework == "starlette" else fastapi_handlers()
    middleware = [
        Middleware(StateRequestID),
        Middleware(SecurityHeadersMiddleware),
        Middleware(ProblemDetailsMiddleware),
    ]
    app = build_app(framework, middleware=middleware, exception_handlers=handlers)
    response = await fetch(app, "/boom")
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "rid-fw"
