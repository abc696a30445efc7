"""Match a request against a Starlette or FastAPI router before the router has run.

Used by :class:`~asgi_kit._asgi.routes.RouteLookup` (which imports this module by name
when it meets a Starlette or FastAPI layer) to label a request answered before routing, a 401
from auth say, with the template the router would have matched. It goes through the routes
the way the router does: the first full match wins, else the first partial one (the router's
405), into ``Mount``/``Host`` sub-routers and FastAPI's included routers, each route's own
``matches(scope)`` doing the work (so ``root_path`` and converters are handled as the router
handles them). The answer is the one the router leaves in the scope, so a request gets the
same label whether it was rejected before routing or served.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from asgi_kit._asgi.routes import RouteResolver, template_of_route
from asgi_kit._asgi.types import Scope
from asgi_kit.integrations._problems import framework_missing

try:
    from starlette._utils import get_route_path
    from starlette.applications import Starlette
    from starlette.routing import Match, Route, Router, WebSocketRoute
except ImportError as exc:  # tested with the framework hidden from sys.modules
    raise framework_missing("starlette", "Starlette", exc) from exc

#: Mounts within mounts are followed this deep, no deeper.
MAX_DEPTH: Final = 8
# Routes whose matches() is a path regex and a method check, and writes nothing a label needs:
# matched here without the child scope (path parameters converted, dicts built) that the
# label does not use. FastAPI's APIRoute joins them unless an included router is involved.
_PLAIN_HTTP: set[type] = {Route}
_PLAIN_WEBSOCKET: set[type] = {WebSocketRoute}
try:
    from fastapi.routing import APIRoute, APIWebSocketRoute
except ImportError:  # Starlette without FastAPI
    pass
else:
    _PLAIN_HTTP.add(APIRoute)
    _PLAIN_WEBSOCKET.add(APIWebSocketRoute)


def route_finder(layer: object) -> RouteResolver | None:
    """A resolver for ``layer`` if it is a Starlette/FastAPI application or router, else ``None``."""
    if isinstance(layer, Starlette):
        router: Router = layer.router
    elif isinstance(layer, Router):
        router = layer
    else:
        return None

    def resolve(scope: Scope) -> str | None:
        # The router marks every scope it sees; if it ran, its answer (a 404 here) stands.
        if "router" in scope or scope.get("type") not in ("http", "websocket"):
            return None
        return _match(router.routes, scope, 0)

    return resolve


def _match(routes: Sequence[Any], scope: Scope, depth: int) -> str | None:
    partial: tuple[Any, Scope] | None = None
    copied: Scope | None = None
    http = scope["type"] == "http"
    plain = _PLAIN_HTTP if http else _PLAIN_WEBSOCKET
    path = get_route_path(scope) if scope.get("root_path") else scope["path"]
    method = scope.get("method")
    for route in routes:
        if type(route) in plain:
            if route.path_regex.match(path) is None:
                continue
            methods = route.methods if http else None
            if not methods or method in methods:
                return route.path_format  # type: ignore[no-any-return]
            if partial is None:
                partial = (route, {})
            continue
        if copied is None:  # matches() may write into the scope (FastAPI keeps state there)
            copied = dict(scope)
        match, child = route.matches(copied)
        if match is Match.FULL:
            return _inside(route, child, scope, depth)
        if match is Match.PARTIAL and partial is None:
            partial = (route, child)
    return None if partial is None else _inside(partial[0], partial[1], scope, depth)


def _inside(route: Any, child: Scope, scope: Scope, depth: int) -> str | None:
    if depth < MAX_DEPTH:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # FastAPI's include_router: its routes with the include prefix
            return _effective(contexts(), {**scope, **child})
        inner = getattr(route, "routes", None)
        if inner:  # a Mount or Host around a router: the router inside answers, as it would
            found = _match(inner, {**scope, **child}, depth + 1)
            if found is not None:
                return found
    # FastAPI's APIRoute names itself in the child scope; Starlette's router stores the route.
    return template_of_route(child.get("route", route))


def _effective(contexts: Iterable[Any], scope: Scope) -> str | None:
    partial: str | None = None
    for context in contexts:
        match, _ = context.matches(scope)
        if match is Match.FULL or (match is Match.PARTIAL and partial is None):
            template = getattr(context, "path_format", None) or template_of_route(
                getattr(context, "starlette_route", None)
            )
            if match is Match.FULL:
                return template
            partial = template
    return partial


__all__ = ["MAX_DEPTH", "route_finder"]
