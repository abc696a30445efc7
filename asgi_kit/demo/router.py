"""A minimal exact-path router for the demo: the kit needs no framework to serve an API.

Each route records its template in ``scope["asgi_kit.route"]`` so metrics, spans and the
access log label it; unknown paths get a 404 problem and wrong methods a 405 with ``Allow``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from asgi_kit import ROUTE_SCOPE_KEY, answer_lifespan
from asgi_kit.errors import METHOD_NOT_ALLOWED, NOT_FOUND, write_problem_details
from asgi_kit.types import ASGIApp, Receive, Scope, Send


class Router:
    """Dispatch on exact path and method; ``mounts`` forward a path prefix to another app."""

    def __init__(
        self,
        routes: Mapping[str, Mapping[str, ASGIApp]],
        *,
        mounts: Iterable[tuple[str, ASGIApp]] = (),
    ) -> None:
        self._routes = {
            path: {m.upper(): app for m, app in methods.items()} for path, methods in routes.items()
        }
        self._allow = {path: ", ".join(sorted(methods)).encode() for path, methods in self._routes.items()}
        self._mounts = tuple((prefix.rstrip("/"), app) for prefix, app in mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        path: str = scope["path"]
        for prefix, app in self._mounts:
            if path == prefix or path.startswith(prefix + "/"):
                scope[ROUTE_SCOPE_KEY] = prefix + "/{path}"
                child = dict(scope)
                child["path"] = path[len(prefix) :] or "/"
                child["root_path"] = scope.get("root_path", "") + prefix
                await app(child, receive, send)
                return
        methods = self._routes.get(path)
        if methods is None or scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
                return
            await write_problem_details(send, NOT_FOUND, scope=scope)
            return
        scope[ROUTE_SCOPE_KEY] = path
        handler = methods.get(scope["method"])
        if handler is None:
            await write_problem_details(
                send, METHOD_NOT_ALLOWED, {"allow": self._allow[path].decode()}, scope=scope
            )
            return
        await handler(scope, receive, send)


__all__ = ["Router"]
