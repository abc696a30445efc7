"""``LoggingMiddleware``: one JSON access-log record per HTTP request.

The record is written when the request is over (the app returned or raised), with what only
the end knows (from the shared response observer): the matched route template, the status, the
duration and the bytes sent. It is made by ``Logger.makeRecord``, carries the fields as
attributes (as ``extra=`` would) and is passed to ``Logger.handle``, so record factories,
filters, handlers and propagation apply to it as to any record; nothing at all is built when
the logger's level is disabled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter
from typing import Any, Final

from asgi_kit._asgi.context import TraceIds, request_id_var, scope_request_id, trace_ids_var
from asgi_kit._asgi.headers import header_name
from asgi_kit._asgi.observer import CLIENT_CLOSED_REQUEST, observe_response
from asgi_kit._asgi.options import check_callable, check_instance, check_int, check_str, check_strings
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.principal import Principal
from asgi_kit._asgi.redaction import secret_names
from asgi_kit._asgi.routes import UNMATCHED_ROUTE, RouteLookup, RouteResolver, resolve_route_template
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.logging.logger import resolve_level
from asgi_kit.logging.proxies import TrustedProxies
from asgi_kit.logging.redaction import (
    DEFAULT_REDACT_HEADERS,
    DEFAULT_REDACT_QUERY_PARAMS,
    REDACTED,
    redact_query,
    safe_text,
)

_SHORT: Final = 128  # method, client address, request id: anything longer is an attack
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class LoggingMiddleware:
    """Write one access-log record per HTTP request.

    Place it just inside ``RequestIDMiddleware`` (so the record carries the id) and outside
    authentication (so rejected requests are logged too); the principal is still read, after the
    app ran, from ``scope["user"]``. Websocket and lifespan scopes pass through unlogged.

    Reads ``scope`` (method, path, query string, client, ``User-Agent``, ``X-Forwarded-For``, the
    route template, the principal), the request-id and trace-id contextvars, and the response
    messages (status, body sizes). Writes nothing but the log record. The record's fields:
    ``method``, ``path``, ``query`` (secrets redacted; only when there is one), ``route``,
    ``status`` (int), ``duration_ms``, ``bytes_sent``, ``error`` (only when true), ``client``,
    ``user_agent``, ``request_id``, ``trace_id`` and ``span_id`` (when traced), ``principal``
    (``id``, ``org_id``, ``role``, ``auth_method``; never a credential) and ``headers`` (only those
    asked for). A field with nothing to say is left out rather than written as null.

    ``status`` is the response's status; 500 when the app raised (or returned) before starting a
    response; 499 when the client disconnected before the response was complete. ``error`` is
    true when the app raised or never answered, including after the response started, when the
    status is the one already sent. Every value from the request is bounded in length and has
    its control characters escaped. A failing handler never fails the request.

    Args:
        app: the wrapped ASGI app.
        logger: where records go, e.g. from :func:`asgi_kit.logging.new_logger`.
        exclude_paths: exact paths (or ``/prefix/*``) never logged, such as health checks.
        level: the records' level (a number or a name).
        message: the records' ``message``.
        trusted_proxies: addresses or networks (``"10.0.0.0/8"``, ``"*"`` for any) of reverse
            proxies whose ``X-Forwarded-For`` is believed; without them the client is the peer.
        request_headers: extra request headers to log under ``headers``; credentials among them
            (``Authorization``, ``Cookie``, ``X-API-Key``, ... and ``redact_headers``) show ``REDACTED``.
        redact_headers: more header names whose value is never logged.
        redact_query_params: more query parameter names whose value is never logged, on top of
            :data:`~asgi_kit.logging.redaction.DEFAULT_REDACT_QUERY_PARAMS`.
        route_resolver: reads the route template from the scope; the kit's resolver by default.
        max_field_length: the longest path, query, user agent or header value logged.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: logging.Logger,
        exclude_paths: Sequence[str] = (),
        level: int | str = logging.INFO,
        message: str = "request",
        trusted_proxies: Sequence[str] = (),
        request_headers: Sequence[str] = (),
        redact_headers: Sequence[str] = (),
        redact_query_params: Sequence[str] = (),
        route_resolver: RouteResolver | None = None,
        max_field_length: int = 1024,
    ) -> None:
        check_instance(
            "logger", logger, logging.Logger, "a logging.Logger (from asgi_kit.logging.new_logger, say)"
        )
        check_str("message", message, allow_empty=True)
        check_int("max_field_length", max_field_length, minimum=32)
        if route_resolver is not None:
            check_callable("route_resolver", route_resolver)
        self.app = app
        self._logger = logger
        self._level = resolve_level(level)
        self._message = message
        self._exclude = PathFilter(exclude_paths)
        self._proxies = TrustedProxies(trusted_proxies)
        self._redact_headers = DEFAULT_REDACT_HEADERS | _names("redact_headers", redact_headers)
        self._log_headers = {
            name.encode("latin-1"): name for name in _names("request_headers", request_headers)
        }
        self._redact_query = secret_names(
            "redact_query_params", redact_query_params, DEFAULT_REDACT_QUERY_PARAMS
        )
        self._resolver: RouteResolver = route_resolver or resolve_route_template
        self._lookup = RouteLookup(app)  # the router asked, for a request answered before it ran
        # Decided once: TrustedProxies.__bool__ is a Python call the record would pay every time.
        self._scan_headers = bool(self._log_headers or self._proxies)
        self._limit = max_field_length
        # Logger.makeRecord's positional arguments: name, level, path, line, message, args, exc_info.
        self._record_args = (logger.name, self._level, __file__, 0, message, (), None)
        self._last_principal: tuple[Principal | None, dict[str, Any]] = (None, {})

    def __repr__(self) -> str:
        return (
            f"LoggingMiddleware(logger={self._logger.name!r}, level={logging.getLevelName(self._level)!r}, "
            f"exclude_paths={self._exclude!r}, trusted_proxies={self._proxies!r})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self._exclude.matches(scope)
            or not self._logger.isEnabledFor(self._level)
        ):
            await self.app(scope, receive, send)
            return
        observer = observe_response(receive, send)
        start = perf_counter()
        try:
            await self.app(scope, observer.receive, observer.send)
        except BaseException as exc:
            observer.app_raised(exc)
            raise
        finally:
            self._emit(
                scope,
                observer.final_status,
                observer.error,
                perf_counter() - start,
                observer.bytes_sent,
                observer.trace,
            )

    def _emit(
        self, scope: Scope, status: int, error: bool, seconds: float, sent: int, trace: TraceIds | None
    ) -> None:
        try:
            fields = self._fields(scope, status, error, seconds, sent, trace)
            # The standard pipeline minus the caller lookup, which would always find this line.
            # The fields are set as extra= sets them, without its per-key check against the
            # record's attributes (a Python loop, ~1 us a record): none of them is a LogRecord name.
            logger = self._logger
            record = logger.makeRecord(*self._record_args)
            record.__dict__.update(fields)
            logger.handle(record)
        except Exception:
            # A broken handler, filter or formatter must never fail the request.
            return

    def _fields(
        self, scope: Scope, status: int, error: bool, seconds: float, sent: int, trace: TraceIds | None
    ) -> dict[str, Any]:
        limit = self._limit
        method = scope.get("method") or ""
        path = scope.get("path") or ""
        route = self._resolver(scope) or self._lookup(scope) or UNMATCHED_ROUTE
        fields: dict[str, Any] = {
            "method": method if method in _METHODS else safe_text(method, _SHORT),
            "path": path if len(path) <= limit and path.isprintable() else safe_text(path, limit),
            "route": route if len(route) <= limit and route.isprintable() else safe_text(route, limit),
            "status": status if type(status) is int else int(status),
            "duration_ms": int(seconds * 1_000_000) / 1000,  # round() formats a string: slower
            "bytes_sent": sent,
        }
        if error:
            fields["error"] = True
        query = scope.get("query_string")
        if query:
            fields["query"] = redact_query(query, limit, secrets=self._redact_query)

        user_agent = forwarded = None
        log_headers = self._log_headers
        logged: dict[str, str] | None = None
        headers = scope.get("headers") or ()
        if self._scan_headers:
            for name, value in headers:
                if name == b"user-agent":
                    user_agent = value
                elif name == b"x-forwarded-for":
                    forwarded = value if forwarded is None else forwarded + b"," + value
                if name in log_headers:
                    logged = self._add_header(logged, log_headers[name], value)
        else:  # the common case: only the User-Agent is wanted, and the scan stops there
            for name, value in headers:
                if name == b"user-agent":
                    user_agent = value
                    break
        client = scope.get("client")
        address = (client[0] if type(client[0]) is str else str(client[0])) if client else None
        if forwarded is not None and self._proxies:
            address = self._proxies.client(address, forwarded)
        if address is not None:
            fields["client"] = (
                address if address.isprintable() and len(address) <= _SHORT else safe_text(address, _SHORT)
            )
        if user_agent is not None:
            agent = user_agent.decode("latin-1")
            fields["user_agent"] = (
                agent if agent.isprintable() and len(agent) <= limit else safe_text(agent, limit)
            )

        request_id = request_id_var.get() or scope_request_id(scope)
        if request_id is not None:
            fields["request_id"] = request_id if len(request_id) <= _SHORT else safe_text(request_id, _SHORT)
        if trace is None:
            trace = trace_ids_var.get()
        if trace is not None:
            fields["trace_id"] = trace.trace_id
            fields["span_id"] = trace.span_id
        principal = scope.get("user")
        if isinstance(principal, Principal):  # get_principal(), inlined
            fields["principal"] = self._principal_fields(principal)
        if logged is not None:
            fields["headers"] = logged
        return fields

    def _principal_fields(self, principal: Principal) -> dict[str, Any]:
        # A cached token hands every request the same (frozen) Principal object, so the last
        # one's fields are kept: building them costs three escapes per record (measured ~10 % of
        # the access log inside the kit stack). Records of that principal share the dict.
        last = self._last_principal
        if last[0] is principal:
            return last[1]
        fields = {
            "id": safe_text(principal.identity, _SHORT),
            "org_id": safe_text(principal.org_id, _SHORT) if principal.org_id else None,
            "role": safe_text(principal.role, _SHORT),
            "auth_method": principal.auth_method,
        }
        # One assignment: threads never see a torn tuple.
        self._last_principal = (principal, fields)
        return fields

    def _add_header(self, logged: dict[str, str] | None, key: str, value: bytes) -> dict[str, str]:
        if logged is None:
            logged = {}
        if key in self._redact_headers:
            logged[key] = REDACTED
        elif key in logged:
            # Repeated headers are joined, as RFC 9110 allows, then bounded again.
            logged[key] = safe_text(f"{logged[key]}, {safe_text(value, self._limit)}", self._limit)
        else:
            logged[key] = safe_text(value, self._limit)
        return logged


def _names(option: str, values: Sequence[str]) -> frozenset[str]:
    return frozenset(
        header_name(name, option=option).decode("ascii") for name in check_strings(option, values)
    )


__all__ = ["CLIENT_CLOSED_REQUEST", "LoggingMiddleware"]
