"""``MetricsMiddleware``: count and time every HTTP request by method, route template and status."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter
from typing import Final

from asgi_kit._asgi.observer import CLIENT_CLOSED_REQUEST, observe_response
from asgi_kit._asgi.options import check_callable, check_instance, check_str
from asgi_kit._asgi.paths import PathFilter, route_path
from asgi_kit._asgi.routes import UNMATCHED_ROUTE, RouteLookup, RouteResolver, resolve_route_template
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.metrics.exposition import metrics_app
from asgi_kit.metrics.metrics import HTTPMetrics, register_metrics

logger = logging.getLogger("asgi_kit.metrics")

#: Recorded when the client went away before the response completed (nginx's convention): the
#: kit's one :data:`~asgi_kit._asgi.observer.CLIENT_CLOSED_REQUEST`, under this module's name for it.
CLIENT_CLOSED_STATUS: Final = CLIENT_CLOSED_REQUEST


class MetricsMiddleware:
    """Record ``http_requests_total``, ``http_request_duration_seconds``, the response size and
    the in-flight gauge for every HTTP request.

    Place it outside the router and inside the request-id and error layers, so the 500s those
    render are counted as the client saw them; the route label is read from the scope *after*
    the app returns, when the router has written the matched template (Starlette, FastAPI,
    Litestar, or ``scope["asgi_kit.route"]``). Unmatched paths collapse to one label value.

    Reads ``scope["method"]``, the route template keys and the response status; writes nothing
    to the scope or the response. Websocket and lifespan connections pass through untouched.

    The ``status`` label is the response's status; 499 when the client went away before the
    response completed (even after it started); 500 when the app raised or returned before
    starting one: the outcome the access log and the server span report too
    (:class:`~asgi_kit._asgi.observer.ResponseObserver`).

    Args:
        app: the ASGI app to wrap.
        metrics: where to record; ``None`` registers fresh ones on a fresh registry (see
            :attr:`metrics` and ``metrics.registry``).
        service_name: the service name used when ``metrics`` is ``None``.
        exclude_paths: exact paths (or ``/prefix/*`` subtrees) never recorded, e.g. ``/metrics``.
        path: when set, answer this exact path with the metrics exposition itself.
        multiprocess_dir: the Prometheus multiprocess directory served at ``path``.
        route_resolver: a custom route-template resolver (the kit's shared one by default).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HTTPMetrics | None = None,
        service_name: str = "app",
        exclude_paths: Sequence[str] = (),
        path: str | None = None,
        multiprocess_dir: str | None = None,
        route_resolver: RouteResolver | None = None,
    ) -> None:
        if metrics is not None:
            check_instance("metrics", metrics, HTTPMetrics, "an HTTPMetrics from register_metrics()")
        if path is not None and not check_str("path", path).startswith("/"):
            raise ValueError(f"path must be an absolute path starting with '/', got {path!r}")
        if route_resolver is not None:
            check_callable("route_resolver", route_resolver)
        self.app = app
        self.metrics = metrics if metrics is not None else register_metrics(service_name)
        self._exclude = PathFilter(exclude_paths)
        self._path = path
        self._exposition = (
            metrics_app(self.metrics.registry, multiprocess_dir=multiprocess_dir)
            if path is not None
            else None
        )
        self._resolve = route_resolver or resolve_route_template
        self._lookup = RouteLookup(app)  # the router asked, for a request answered before it ran

    def __repr__(self) -> str:
        options = f"exclude_paths={self._exclude!r}, path={self._path!r}"
        return f"MetricsMiddleware(metrics={self.metrics!r}, {options})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._exposition is not None and route_path(scope) == self._path:
            await self._exposition(scope, receive, send)
            return
        if self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        observer = observe_response(receive, send)
        metrics.request_started()
        start = perf_counter()
        try:
            await self.app(scope, observer.receive, observer.send)
        except BaseException as exc:
            observer.app_raised(exc)
            raise
        finally:
            duration = perf_counter() - start
            metrics.request_finished()
            try:
                route = self._resolve(scope) or self._lookup(scope) or UNMATCHED_ROUTE
                metrics.observe(scope["method"], route, observer.final_status, duration, observer.bytes_sent)
            except Exception:
                # Recording must never fail (or mask the outcome of) the request it describes.
                logger.exception("could not record metrics for this request")


__all__ = ["CLIENT_CLOSED_STATUS", "MetricsMiddleware"]
