"""The Starlette/FastAPI and Litestar route finders: the label a router would give, before it ran."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from asgi_kit._asgi.routes import ROUTE_SCOPE_KEY, RouteLookup, resolve_route_template
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager
from asgi_kit.logging import LoggingMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import build_app


def make_scope(
    path: str, *, method: str = "GET", root_path: str = "", type: str = "http", **extra: Any
) -> Scope:
    """A scope as a server builds it (path includes root_path, as ASGI says)."""
    scope: Scope = {
        "type": type,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http" if type == "http" else "ws",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
        **extra,
    }
    if type == "http":
        scope["method"] = method
    return scope


async def call_app(app: ASGIApp, scope: Scope) -> None:
    """Run one bodiless request through ``app``, discarding the response."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    await app(scope, receive, send)


JWT = JWTManager(JWTConfig(secret="finders-" + "x" * 40, issuer="https://issuer.test", audience="finders"))


async def raw_static(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"static"})


def starlette_rich() -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route, Router, WebSocketRoute

    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def ws(socket: Any) -> None:
        await socket.close()

    api = Router([Route("/users/{uid}", endpoint), Route("/users", endpoint, methods=["POST"])])
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", endpoint),
            Mount("/api", app=api),
            Mount("/static", app=raw_static),
            WebSocketRoute("/ws/{room}", ws),
        ]
    )


def fastapi_rich() -> ASGIApp:
    from fastapi import APIRouter, FastAPI, WebSocket

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    router = APIRouter()

    @router.get("/things/{tid}")
    async def thing(tid: str) -> dict[str, str]:
        return {"tid": tid}

    @router.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.close()

    app.include_router(router, prefix="/v1")
    return app


CASES: dict[str, tuple[Any, list[tuple[str, str, str]]]] = {
    "starlette": (
        starlette_rich,
        [
            ("GET", "/items/42", ""),
            ("POST", "/items/42", ""),  # the router's 405: the route it partially matched
            ("GET", "/items/abc", ""),
            ("GET", "/api/users/7", ""),
            ("POST", "/api/users", ""),
            ("GET", "/api/nope", ""),  # inside the mount, no route: the mount's own template
            ("GET", "/static/app.js", ""),
            ("GET", "/nope", ""),
            ("GET", "/items/42", "/prefix"),  # behind a proxy's root_path
        ],
    ),
    "fastapi": (
        fastapi_rich,
        [
            ("GET", "/items/42", ""),
            ("DELETE", "/items/42", ""),
            ("GET", "/v1/things/x", ""),
            ("PUT", "/v1/things/x", ""),
            ("GET", "/v1/nope", ""),
            ("GET", "/nope", ""),
            ("GET", "/items/42", "/prefix"),
        ],
    ),
    "litestar": (
        lambda: build_app("litestar"),
        [
            ("GET", "/items/42", ""),
            ("POST", "/items/42", ""),
            ("GET", "/ok/", ""),
            ("GET", "/nope", ""),
            ("GET", "/items/42", "/prefix"),
        ],
    ),
}


def deny_layer(app: ASGIApp) -> ASGIApp:
    """Stands for auth: answers 401 without calling the app, and exposes it as ``.app``."""

    class Deny:
        def __init__(self) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return Deny()


@pytest.mark.parametrize(
    ("framework", "method", "path", "root_path"),
    [(f, m, p, r) for f, (_, rows) in CASES.items() for m, p, r in rows],
)
async def test_before_routing_equals_after_routing(
    framework: str, method: str, path: str, root_path: str
) -> None:
    """For every request, the label found before routing is the one the router leaves after it."""
    build, _ = CASES[framework]
    app = build()
    routed = make_scope(path, method=method, root_path=root_path)
    await call_app(app, routed)
    truth = resolve_route_template(routed)

    before = make_scope(path, method=method, root_path=root_path)
    assert RouteLookup(deny_layer(app))(before) == truth
    assert before[ROUTE_SCOPE_KEY] == (truth or "<unmatched>")


@pytest.mark.parametrize(
    ("framework", "path", "template"),
    [
        ("starlette", "/ws/lobby", "/ws/{room}"),
        ("fastapi", "/v1/live", "/v1/live"),
        ("fastapi", "/nope", None),
    ],
)
def test_websocket_handshakes_are_labelled(framework: str, path: str, template: str | None) -> None:
    """A websocket handshake denied before routing is labelled with its websocket route."""
    app = CASES[framework][0]()
    scope = make_scope(path, type="websocket")
    assert RouteLookup(deny_layer(app))(scope) == template


def test_lifespan_and_routed_scopes_are_not_matched_again() -> None:
    """A lifespan scope, or one a Starlette router already saw, is never matched before routing."""
    app = starlette_rich()
    reader = RouteLookup(deny_layer(app))
    assert reader({"type": "lifespan"}) is None
    assert reader(make_scope("/items/1", router=object())) is None


def counting_starlette(counter: list[int]) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    class CountingRoute(Route):
        def matches(self, scope: Scope) -> Any:
            counter.append(1)
            return super().matches(scope)

    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[CountingRoute("/items/{item_id}", endpoint)])


async def test_matched_once_per_request_and_not_when_routed() -> None:
    """Metrics, tracing and logging share one match for a 401; a routed 200 costs no extra match."""
    counter: list[int] = []
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    log = io.StringIO()
    metrics = register_metrics("finders")
    app = TracingMiddleware(
        LoggingMiddleware(
            MetricsMiddleware(AuthMiddleware(counting_starlette(counter), jwt=JWT), metrics=metrics),
            logger=new_logger(f"finders-{uuid.uuid4().hex[:6]}", stream=log),
        ),
        tracer_provider=provider,
    )
    token = JWT.generate_token_pair("u", "o", "org_user").access_token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        assert (await client.get("/items/1")).status_code == 401
        assert len(counter) == 1
        assert (await client.get("/items/2", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        assert len(counter) == 2  # the router's own match only
    assert [span.name for span in spans.get_finished_spans()] == ["GET /items/{item_id}"] * 2
    assert [json.loads(line)["route"] for line in log.getvalue().splitlines()] == ["/items/{item_id}"] * 2
    assert (
        'route="/items/{item_id}",service="finders",status="401"'
        in generate_latest(metrics.registry).decode()
    )
    provider.shutdown()


async def test_kit_inside_starlette_finds_the_router() -> None:
    """Added with Starlette's middleware=, the kit finds the router through Starlette's own layers."""
    from starlette.middleware import Middleware

    metrics = register_metrics("inside")
    app = build_app(
        "starlette",
        middleware=[Middleware(MetricsMiddleware, metrics=metrics), Middleware(AuthMiddleware, jwt=JWT)],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        assert (await client.get("/items/3")).status_code == 401
    assert (
        'route="/items/{item_id}",service="inside",status="401"' in generate_latest(metrics.registry).decode()
    )


def test_finders_ignore_other_layers() -> None:
    """Each finder answers only for its own framework's applications and routers."""
    from asgi_kit.integrations import _litestar_routes, _starlette_routes

    assert _starlette_routes.route_finder(object()) is None
    assert _litestar_routes.route_finder(object()) is None
    assert _starlette_routes.route_finder(build_app("litestar")) is None
    assert _starlette_routes.route_finder(starlette_rich().router) is not None  # type: ignore[attr-defined]


async def test_no_labelling_layer_no_match() -> None:
    """Without metrics, tracing or logging, a 401 before routing costs no route matching at all."""
    counter: list[int] = []
    app = AuthMiddleware(counting_starlette(counter), jwt=JWT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        assert (await client.get("/items/1")).status_code == 401
    assert counter == []
