"""The one route-template resolver used by metrics, tracing and logging.

Routers write what they matched into the scope *in place* while the app runs, so read the
template after ``await app(...)`` returns (or once the response has started):

- FastAPI and Starlette put the matched route object in ``scope["route"]`` (``.path``).
  Under a ``Mount`` that is the path inside the mount. FastAPI's included routers also leave
  their effective route (the path with the include prefix) in ``scope["fastapi"]``.
- Litestar writes ``scope["path_template"]``.
- Any app may set ``scope["asgi_kit.route"]`` itself (the kit's own apps do).

Anything else, including a 404, collapses to :data:`UNMATCHED_ROUTE` so label cardinality
stays bounded whatever paths clients invent.

Labels before routing: a 401 from auth or a 429 from a budget is answered before any router
ran, so nothing above is in the scope. :class:`RouteLookup` then asks the wrapped
app's router directly: it walks inward from the layer's ``app`` through each layer's ``.app``
to the first one a :data:`RouteFinder` recognises (the adapters in :mod:`asgi_kit.integrations`
know Starlette, FastAPI and Litestar; :func:`register_route_finder` adds others), matches the
scope once, and stores the answer under ``scope["asgi_kit.route"]`` so every other layer reads
the same value without matching again. When the router did run, its own answer stands.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Final

from asgi_kit._asgi.options import check_callable
from asgi_kit._asgi.types import Scope

UNMATCHED_ROUTE: Final = "<unmatched>"
ROUTE_SCOPE_KEY: Final = "asgi_kit.route"
#: How many layers :func:`find_route_resolver` looks through before it gives up.
MAX_LAYERS: Final = 32

RouteResolver = Callable[[Scope], "str | None"]
#: Given one layer of an ASGI app, a resolver matching a scope against its router, or ``None``
#: when the layer is not a router this finder knows.
RouteFinder = Callable[[Any], "RouteResolver | None"]

_log = logging.getLogger("asgi_kit.routes")

# Framework package -> the adapter module whose ``route_finder`` knows its routers. Named, not
# imported: an adapter is imported only when a layer of that framework is met, which means
# the framework is already loaded (like an entry point, and without an upward import here).
_ADAPTERS: Final = {
    "starlette": "asgi_kit.integrations._starlette_routes",
    "fastapi": "asgi_kit.integrations._starlette_routes",
    "litestar": "asgi_kit.integrations._litestar_routes",
}
_finders: list[RouteFinder] = []


def template_of_route(route: object) -> str | None:
    """The template of a Starlette/FastAPI route object (``path_format``, else ``path``)."""
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


def resolve_route_template(scope: Scope) -> str | None:
    """The matched route template, or ``None`` when the router matched nothing."""
    explicit = scope.get(ROUTE_SCOPE_KEY)
    if isinstance(explicit, str):
        return explicit if explicit != UNMATCHED_ROUTE else None
    litestar = scope.get("path_template")
    if isinstance(litestar, str):
        return litestar
    route = scope.get("route")
    if route is None:
        return None
    fastapi = scope.get("fastapi")
    if isinstance(fastapi, dict):
        # An included router's route object carries its path without the include prefix;
        # the effective route FastAPI selected carries the full one.
        effective = getattr(fastapi.get("effective_route_context"), "path_format", None)
        if isinstance(effective, str) and effective:
            return effective
    return template_of_route(route)


def route_template_or_unmatched(scope: Scope, resolver: RouteResolver | None = None) -> str:
    template = (resolver or resolve_route_template)(scope)
    return template if template else UNMATCHED_ROUTE


def register_route_finder(finder: RouteFinder) -> None:
    """Teach :class:`RouteLookup` another framework's router.

    ``finder(layer)`` is called with each layer met while walking inward from a kit layer
    (once per kit layer, at its first unrouted request); it returns a resolver for a router it
    knows, else ``None``. The resolver gets the scope of a request no router has seen and returns
    the template the router would match, or ``None``. Finders registered here are asked before
    the built-in Starlette, FastAPI and Litestar adapters.
    """
    if check_callable("finder", finder) not in _finders:
        _finders.insert(0, finder)


def unregister_route_finder(finder: RouteFinder) -> None:
    """Forget a finder added with :func:`register_route_finder` (no error if it is unknown)."""
    if finder in _finders:
        _finders.remove(finder)


def _finders_for(layer: object) -> Iterator[RouteFinder]:
    yield from tuple(_finders)
    for cls in type(layer).__mro__:
        adapter = _ADAPTERS.get(cls.__module__.partition(".")[0])
        if adapter is not None:
            try:
                module = importlib.import_module(adapter)
            except ImportError:  # the framework's module is there but broken: no pre-resolution
                _log.warning("could not import %s; routes are resolved after the app only", adapter)
                return
            yield module.route_finder
            return


def find_route_resolver(app: object) -> RouteResolver | None:
    """The resolver for the first router found walking inward from ``app``, or ``None``.

    Each layer in between is expected to expose the next one as ``.app`` (the kit's layers,
    Starlette's middleware, most pure ASGI middleware do); the walk stops at a layer without
    one, at a layer seen before, or after :data:`MAX_LAYERS` layers.
    """
    layer: object = app
    seen: set[int] = set()
    for _ in range(MAX_LAYERS):
        if layer is None or id(layer) in seen:
            return None
        seen.add(id(layer))
        for finder in _finders_for(layer):
            try:
                resolver = finder(layer)
            except Exception:  # a broken finder costs the early label, never the request
                _log.exception("route finder %r failed", finder)
                resolver = None
            if resolver is not None:
                return resolver
        try:
            layer = getattr(layer, "app", None)
        except Exception:  # a property that raises: stop here
            return None
    return None


class RouteLookup:
    """Asks the wrapped app's router for the template of a request it has not routed.

    Build one per middleware with the app it wraps; call it once the app returned and the
    after-the-app reading (:func:`resolve_route_template`, or the layer's own resolver) found
    nothing: ``resolve(scope) or lookup(scope) or UNMATCHED_ROUTE``. A request the router served
    never gets here, so it costs nothing. The router is looked for once, at the first request
    that needs it; a request is matched at most once, the answer stored under
    ``scope["asgi_kit.route"]`` (:data:`UNMATCHED_ROUTE` when nothing matched), where every
    other layer's after-the-app reading finds it.
    """

    __slots__ = ("_app", "_looked", "_router")

    def __init__(self, app: object) -> None:
        self._app = app
        self._router: RouteResolver | None = None
        self._looked = False

    def __call__(self, scope: Scope) -> str | None:
        if ROUTE_SCOPE_KEY in scope:  # matched by another layer already, or set by the app
            return resolve_route_template(scope)
        if not self._looked:
            # Racing requests may both look; they find the same router.
            self._router = find_route_resolver(self._app)
            self._looked = True
        router = self._router
        if router is None:
            return None
        try:
            template = router(scope)
        except Exception:  # the label is not worth the request
            _log.exception("matching the route before routing failed")
            template = None
        scope[ROUTE_SCOPE_KEY] = template or UNMATCHED_ROUTE
        return template or None


__all__ = [
    "MAX_LAYERS",
    "ROUTE_SCOPE_KEY",
    "UNMATCHED_ROUTE",
    "RouteFinder",
    "RouteLookup",
    "RouteResolver",
    "find_route_resolver",
    "register_route_finder",
    "resolve_route_template",
    "route_template_or_unmatched",
    "template_of_route",
    "unregister_route_finder",
]
