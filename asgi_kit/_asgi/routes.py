"""The one route-template resolver used by metrics, tracing and logging.

Routers write what they matched into the scope *in place* while the app runs, so read the
template after ``await app(...)`` returns (or once the response has started):

- FastAPI and Starlette put the matched route object in ``scope["route"]`` (``.path``).
  Under a ``Mount`` that is the path inside the mount.
- Litestar writes ``scope["path_template"]``.
- Any app may set ``scope["asgi_kit.route"]`` itself (the kit's own apps do).

Anything else, including a 404, collapses to :data:`UNMATCHED_ROUTE` so label cardinality
stays bounded whatever paths clients invent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from asgi_kit._asgi.types import Scope

UNMATCHED_ROUTE: Final = "<unmatched>"
ROUTE_SCOPE_KEY: Final = "asgi_kit.route"

RouteResolver = Callable[[Scope], "str | None"]


def resolve_route_template(scope: Scope) -> str | None:
    """The matched route template, or ``None`` when the router matched nothing."""
    explicit = scope.get(ROUTE_SCOPE_KEY)
    if isinstance(explicit, str):
        return explicit
    litestar = scope.get("path_template")
    if isinstance(litestar, str):
        return litestar
    route = scope.get("route")
    if route is not None:
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return None


def route_template_or_unmatched(scope: Scope, resolver: RouteResolver | None = None) -> str:
    template = (resolver or resolve_route_template)(scope)
    return template if template else UNMATCHED_ROUTE


__all__ = [
    "ROUTE_SCOPE_KEY",
    "UNMATCHED_ROUTE",
    "RouteResolver",
    "resolve_route_template",
    "route_template_or_unmatched",
]
