"""RouteLookup: the wrapped app's router asked, once per request, when the router did not run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from asgi_kit._asgi.routes import (
    MAX_LAYERS,
    ROUTE_SCOPE_KEY,
    UNMATCHED_ROUTE,
    RouteLookup,
    RouteResolver,
    find_route_resolver,
    register_route_finder,
    resolve_route_template,
    unregister_route_finder,
)
from asgi_kit._asgi.types import Receive, Scope, Send


def make_scope(path: str, **extra: Any) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [], **extra}


class ToyRouter:
    """A framework this kit knows nothing about: a dict of exact paths to templates."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.lookups = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never called here")


class Layer:
    """A pure ASGI middleware exposing the next layer as ``.app``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def toy_finder(layer: object) -> RouteResolver | None:
    if not isinstance(layer, ToyRouter):
        return None
    router = layer

    def resolve(scope: Scope) -> str | None:
        router.lookups += 1
        return router.table.get(scope["path"])

    return resolve


@pytest.fixture
def toy() -> Iterator[None]:
    register_route_finder(toy_finder)
    yield
    unregister_route_finder(toy_finder)


@pytest.mark.usefixtures("toy")
def test_pre_resolution_through_layers_once_per_request() -> None:
    """Found through the layers in between; matched once, and every other layer reads the same value."""
    router = ToyRouter({"/items/1": "/items/{id}"})
    app = Layer(Layer(router))
    outer, inner = RouteLookup(app), RouteLookup(app.app)
    scope = make_scope("/items/1")
    assert inner(scope) == "/items/{id}"
    assert outer(scope) == "/items/{id}"
    assert scope[ROUTE_SCOPE_KEY] == "/items/{id}"
    assert router.lookups == 1


@pytest.mark.usefixtures("toy")
def test_unmatched_is_remembered_and_reads_as_none() -> None:
    """Nothing matched: None for every layer, one lookup, the unmatched marker in the scope."""
    router = ToyRouter({})
    reader = RouteLookup(Layer(router))
    scope = make_scope("/nope")
    assert reader(scope) is None
    assert reader(scope) is None
    assert scope[ROUTE_SCOPE_KEY] == UNMATCHED_ROUTE
    assert resolve_route_template(scope) is None
    assert router.lookups == 1


@pytest.mark.usefixtures("toy")
def test_router_answer_wins_and_costs_no_lookup() -> None:
    """When the router ran, its answer stands and the router is not asked again."""
    router = ToyRouter({"/items/1": "/wrong"})
    lookup = RouteLookup(Layer(router))
    scope = make_scope("/items/1", path_template="/items/{item_id}")
    assert (resolve_route_template(scope) or lookup(scope)) == "/items/{item_id}"
    assert router.lookups == 0
    assert ROUTE_SCOPE_KEY not in scope


def test_no_known_router_no_work() -> None:
    """A bare ASGI app: no router found, nothing written to the scope, the walk done once."""
    reader = RouteLookup(Layer(Layer(lambda *a: None)))
    for _ in range(3):
        scope = make_scope("/x")
        assert reader(scope) is None
        assert ROUTE_SCOPE_KEY not in scope


@pytest.mark.usefixtures("toy")
def test_walk_is_bounded_and_survives_cycles() -> None:
    """A cycle of layers ends the walk; so does a chain longer than MAX_LAYERS."""
    first = Layer(None)
    first.app = Layer(first)
    assert find_route_resolver(first) is None
    chain: Any = ToyRouter({"/a": "/a"})
    for _ in range(MAX_LAYERS - 1):
        chain = Layer(chain)
    assert find_route_resolver(chain) is not None
    assert find_route_resolver(Layer(chain)) is None


def test_walk_stops_at_a_raising_attribute() -> None:
    """A layer whose ``app`` property raises ends the walk instead of failing the request."""

    class Raising:
        @property
        def app(self) -> Any:
            raise RuntimeError("no")

    assert find_route_resolver(Layer(Raising())) is None


def test_broken_finder_and_resolver_cost_only_the_label(caplog: pytest.LogCaptureFixture) -> None:
    """A finder or a resolver that raises is logged; the request gets the unmatched label."""

    def broken_finder(layer: object) -> RouteResolver | None:
        raise RuntimeError("finder")

    def broken_resolver_finder(layer: object) -> RouteResolver | None:
        def resolve(scope: Scope) -> str | None:
            raise RuntimeError("resolver")

        return resolve if isinstance(layer, ToyRouter) else None

    register_route_finder(broken_finder)
    try:
        with caplog.at_level(logging.ERROR, "asgi_kit.routes"):
            assert find_route_resolver(Layer(object())) is None
        assert "route finder" in caplog.text
    finally:
        unregister_route_finder(broken_finder)
    register_route_finder(broken_resolver_finder)
    try:
        scope = make_scope("/x")
        with caplog.at_level(logging.ERROR, "asgi_kit.routes"):
            assert RouteLookup(ToyRouter({}))(scope) is None
        assert scope[ROUTE_SCOPE_KEY] == UNMATCHED_ROUTE
        assert "before routing failed" in caplog.text
    finally:
        unregister_route_finder(broken_resolver_finder)


def test_register_checks_and_is_idempotent() -> None:
    """A non-callable finder is a TypeError; registering twice asks it once; unregistering twice is fine."""
    with pytest.raises(TypeError, match="finder"):
        register_route_finder("nope")  # type: ignore[arg-type]
    calls: list[object] = []

    def finder(layer: object) -> RouteResolver | None:
        calls.append(layer)
        return None

    register_route_finder(finder)
    register_route_finder(finder)
    try:
        find_route_resolver(Layer(None))
        assert len(calls) == 1
    finally:
        unregister_route_finder(finder)
        unregister_route_finder(finder)


def test_fastapi_included_router_reads_the_effective_path() -> None:
    """After FastAPI routed through an included router, the template has the include prefix."""
    effective = SimpleNamespace(path_format="/v1/things/{tid}")
    scope = {
        "route": SimpleNamespace(path="/things/{tid}"),
        "fastapi": {"effective_route_context": effective},
    }
    assert resolve_route_template(scope) == "/v1/things/{tid}"
    assert resolve_route_template({"route": SimpleNamespace(path="/x"), "fastapi": {}}) == "/x"
