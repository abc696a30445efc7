"""Stack and Middleware: order, immutability, eager construction, framework fit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_kit import Middleware, Stack
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.testing import call_app
from tests.harness.apps import bare_app, build_app


class TagMiddleware:
    """Appends its tag to an `x-order` header, so tests see which layer ran outermost."""

    def __init__(self, app: ASGIApp, *, tag: str) -> None:
        if not tag:
            raise ValueError("tag must be non-empty")
        self.app = app
        self.tag = tag.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("order", []).append(self.tag.decode())

        async def send_with_tag(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-order", self.tag)]
            await send(message)

        await self.app(scope, receive, send_with_tag)


async def test_first_added_is_outermost() -> None:
    """The first layer sees the request first and the response last."""
    app = Stack().use(TagMiddleware, tag="outer").use(TagMiddleware, tag="inner").wrap(bare_app())
    scope: dict[str, Any] = {}
    from asgi_kit.testing import make_scope

    scope = make_scope("/ok")
    send = await call_app(app, scope)
    assert scope["order"] == ["outer", "inner"]
    assert send.header_values("x-order") == ["inner", "outer"]
    assert isinstance(app, TagMiddleware) and app.tag == b"outer"


def test_immutable_and_introspectable() -> None:
    """use() returns a new stack; len, iteration, indexing, equality and repr show the layers."""
    empty = Stack()
    one = empty.use(TagMiddleware, tag="a")
    two = one.use(ProblemDetailsMiddleware, debug=False)
    assert (len(empty), len(one), len(two)) == (0, 1, 2)
    assert [m.cls for m in two] == [TagMiddleware, ProblemDetailsMiddleware]
    assert two[1].kwargs == {"debug": False}
    assert Stack([Middleware(TagMiddleware, tag="a")]) == one
    assert one + Stack([Middleware(ProblemDetailsMiddleware, debug=False)]) == two
    assert "TagMiddleware, tag='a'" in repr(two) and "ProblemDetailsMiddleware" in repr(two)
    assert repr(empty) == "Stack([])"
    assert two(bare_app()) is not None
    assert Middleware(TagMiddleware, tag="x" * 100).__repr__().endswith("...)")
    cls, args, kwargs = Middleware(TagMiddleware, tag="a")
    assert (cls, args, kwargs) == (TagMiddleware, (), {"tag": "a"})
    assert Middleware(TagMiddleware, tag="a") != "other"


def test_errors_surface_at_wrap_naming_layer_and_option() -> None:
    """A bad option fails when the stack is built, naming the layer and the option."""
    stack = Stack().use(TagMiddleware, tag="")
    with pytest.raises(ValueError, match="TagMiddleware: tag must be non-empty"):
        stack.wrap(bare_app())
    with pytest.raises(TypeError, match="ProblemDetailsMiddleware: debug"):
        Stack().use(ProblemDetailsMiddleware, debug="no").wrap(bare_app())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="app must be callable"):
        Stack().wrap("not an app")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Middleware"):
        Stack(["not a middleware"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="callable"):
        Middleware("nope")  # type: ignore[arg-type]


async def _get(app: ASGIApp, path: str = "/ok") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers={"Origin": "http://allowed.example"})


async def test_starlette_middleware_and_add_middleware() -> None:
    """Kit layers work through Starlette's Middleware list and add_middleware."""
    from starlette.middleware import Middleware as StarletteMiddleware

    app = build_app("starlette", middleware=[StarletteMiddleware(TagMiddleware, tag="s")])
    assert (await _get(app)).headers["x-order"] == "s"
    fast = build_app("fastapi")
    fast.add_middleware(TagMiddleware, tag="f")  # type: ignore[attr-defined]
    assert (await _get(fast)).headers["x-order"] == "f"


async def test_litestar_define_middleware() -> None:
    """Kit layers work through Litestar's DefineMiddleware."""
    from litestar.middleware import DefineMiddleware

    app = build_app("litestar", middleware=[DefineMiddleware(TagMiddleware, tag="l")])
    assert (await _get(app)).headers["x-order"] == "l"


@pytest.mark.parametrize("framework", ["bare", "starlette", "fastapi", "litestar"])
async def test_wrapping_whole_app_with_starlette_cors(framework: str) -> None:
    """A Stack wraps any framework's app, and Starlette's own CORSMiddleware can be a layer."""
    from starlette.middleware.cors import CORSMiddleware

    stack = Stack().use(TagMiddleware, tag="k").use(CORSMiddleware, allow_origins=["http://allowed.example"])
    response = await _get(stack.wrap(build_app(framework)))
    assert response.status_code == 200
    assert response.headers["x-order"] == "k"
    assert response.headers["access-control-allow-origin"] == "http://allowed.example"
