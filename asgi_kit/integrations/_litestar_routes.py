"""Match a request against a Litestar application's router before the router has run.

Used by :class:`~asgi_kit._asgi.routes.RouteLookup` (which imports this module by name
when it meets a Litestar layer) to label a request answered before routing with the template
Litestar would have written to ``scope["path_template"]``. It asks the application's own
router (``app.asgi_router.handle_routing``, which Litestar caches per path and method), with
the path normalised as Litestar normalises it, so the answer is the router's own.
"""

from __future__ import annotations

from asgi_kit._asgi.routes import RouteResolver
from asgi_kit._asgi.types import Scope
from asgi_kit.integrations._problems import framework_missing

try:
    from litestar import Litestar
    from litestar.utils import normalize_path
except ImportError as exc:  # tested with the framework hidden from sys.modules
    raise framework_missing("litestar", "Litestar", exc) from exc


def route_finder(layer: object) -> RouteResolver | None:
    """A resolver for ``layer`` if it is a Litestar application, else ``None``."""
    if not isinstance(layer, Litestar):
        return None
    app = layer

    def resolve(scope: Scope) -> str | None:
        # Litestar marks every scope it sees; if it ran, its answer (a 404 here) stands.
        if scope.get("litestar_app") is not None or scope.get("type") not in ("http", "websocket"):
            return None
        path: str = scope["path"]
        if root_path := scope.get("root_path", ""):
            path = path.split(root_path, maxsplit=1)[-1]
        try:
            *_, template = app.asgi_router.handle_routing(
                path=normalize_path(path), method=scope.get("method")
            )
        except Exception:  # NotFoundException, MethodNotAllowedException: nothing matched
            return None
        return template if isinstance(template, str) else None

    return resolve


__all__ = ["route_finder"]
