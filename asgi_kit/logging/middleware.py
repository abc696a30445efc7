"""``LoggingMiddleware``: one JSON access-log record per HTTP request.

The record is written when the request is over (the app returned or raised), with what only
the end knows: the matched route template, the status, the duration and the bytes sent. The
whole per-request cost is one response observer, and one ``LogRecord`` built directly
(no caller lookup, no ``extra=`` merging); nothing at all when the logger's level is disabled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from time import perf_counter
from typing import Any, Final

from asgi_kit._asgi.context import TraceIds, request_id_var, scope_request_id, trace_ids_var
from asgi_kit._asgi.headers import header_name
from asgi_kit._asgi.observer import CLIENT_CLOSED_REQUEST, observe_response
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.principal import Principal
from asgi_kit._asgi.redaction import secret_names
from asgi_kit._asgi.routes import UNMATCHED_ROUTE, RouteLookup, RouteResolver, resolve_route_template
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.logging.logger import FIELDS_MARK, JsonLinesHandler, JsonLogFormatter, resolve_level
from asgi_kit.logging.proxies import TrustedProxies
from asgi_kit.logging.redaction import (
    DEFAULT_REDACT_HEADERS,
    DEFAULT_REDACT_QUERY_PARAMS,
    REDACTED,
    redact_query,
    redact_url_credentials,
    safe_text,
)

_SHORT: Final = 128  # method, client address, request id: anything longer is an attack
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# The process id, kept current across fork (os.getpid() is a system call per record otherwise).
_PID: Final = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))
# logging's own start time, so relativeCreated means what it means on every other record.
_START_TIME: Final[float] = getattr(logging, "_startTime", time.time())


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
        if not isinstance(logger, logging.Logger):
            raise TypeError("logger must be a logging.Logger (for example from asgi_kit.logging.new_logger)")
        if not isinstance(message, str):
            raise TypeError("message must be a str")
        if (
            isinstance(max_field_length, bool)
            or not isinstance(max_field_length, int)
            or max_field_length < 32
        ):
            raise ValueError("max_field_length must be an int >= 32")
        if route_resolver is not None and not callable(route_resolver):
            raise TypeError("route_resolver must be a callable taking the scope")
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
        self._records = _RecordMaker(logger, self._level, message)
        # The message as JsonLogFormatter.format would write it (it masks URL credentials).
        self._line_message = redact_url_credentials(message) if "://" in message else message
        self._last_principal: tuple[Principal | None, dict[str, Any], str | None] = (None, {}, None)

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
            direct = self._direct()
            if direct is None:
                self._logger.handle(self._records.make(fields))
                return
            handler, formatter = direct
            level = logging.getLevelName(self._level)
            line = formatter.line(
                time.time(), level, self._logger.name, self._line_message, fields, self._encode(fields)
            )
            handler.write_line(line, self._records.make, fields)
        except Exception:
            # A broken handler, filter or formatter must never fail the request.
            return

    def _encode(self, fields: dict[str, Any]) -> str | None:
        """``fields`` as the JSON the formatter's encoder writes (without the opening brace),
        or ``None`` for anything but what :meth:`_fields` builds (then the formatter encodes).

        Straight-line code for the record's known keys, in the order :meth:`_fields` inserts
        them, with json's own C escaping: half the time of the generic encoder, which walks
        and type-checks every item. tests/logging compare the two on arbitrary values.
        """
        try:
            duration = fields["duration_ms"]
            if not math.isfinite(duration):  # never JSON; the formatter has its fallback
                return None
            parts = [
                f'"method":{_enc(fields["method"])},"path":{_enc(fields["path"])},'
                f'"route":{_enc(fields["route"])},"status":{_int_repr(fields["status"])},'
                f'"duration_ms":{_float_repr(duration)},"bytes_sent":{_int_repr(fields["bytes_sent"])}'
            ]
            count = 6
            if "error" in fields:
                if fields["error"] is not True:
                    return None
                parts.append('"error":true')
                count += 1
            for key, prefix in _OPTIONAL_TEXT:
                value = fields.get(key)
                if value is not None:
                    parts.append(prefix + _enc(value))
                    count += 1
            principal = fields.get("principal")
            if principal is not None:
                last = self._last_principal
                if principal is not last[1] or last[2] is None:
                    return None
                parts.append(last[2])
                count += 1
            if len(fields) != count:  # headers, or anything this code does not know: the formatter's way
                return None
        except (TypeError, KeyError):
            return None
        return ",".join(parts) + "}"

    def _direct(self) -> tuple[JsonLinesHandler, JsonLogFormatter] | None:
        """The handler and formatter to write the line with directly, when nothing else could
        see the record: the logger exactly as :func:`~asgi_kit.logging.new_logger` set it up
        (one JSON-lines handler, no filters, not propagating, the standard record factory).

        Then building a ``LogRecord`` and passing it through ``Logger.handle`` and
        ``Handler.handle`` only to read it back is a quarter of the access log's cost; the line
        is the one ``JsonLogFormatter.format`` would write (tests/logging compare them).
        Checked on every request, so a filter or handler added later takes effect at once.
        """
        logger = self._logger
        if logger.disabled or logger.filters or (logger.propagate and logger.parent is not None):
            return None
        handlers = logger.handlers
        if len(handlers) != 1:
            return None
        handler = handlers[0]
        if type(handler) is not JsonLinesHandler or handler.filters or self._level < handler.level:
            return None
        formatter = handler.formatter
        if type(formatter) is not JsonLogFormatter or logging.getLogRecordFactory() is not logging.LogRecord:
            return None
        return handler, formatter

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
        # One assignment: threads never see a torn tuple. The JSON is kept for _encode.
        self._last_principal = (principal, fields, _encode_principal(fields))
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


_enc: Final = encode_basestring_ascii
_int_repr: Final = int.__repr__
_float_repr: Final = float.__repr__
# The optional text fields of a record, in the order _fields adds them.
_OPTIONAL_TEXT: Final = tuple(
    (key, f'"{key}":') for key in ("query", "client", "user_agent", "request_id", "trace_id", "span_id")
)


def _encode_principal(fields: dict[str, Any]) -> str | None:
    """``"principal":{...}`` as the formatter's encoder writes it; ``None`` when a value is not
    text (an ``auth_method`` set by hand to something else), which the formatter then encodes."""
    org = fields["org_id"]
    method = fields["auth_method"]
    if type(method) is not str or not (org is None or type(org) is str):
        return None
    return (
        f'"principal":{{"id":{_enc(fields["id"])},"org_id":{"null" if org is None else _enc(org)},'
        f'"role":{_enc(fields["role"])},"auth_method":{_enc(method)}}}'
    )


class _RecordMaker:
    """Builds the access-log ``LogRecord`` from a template made once.

    ``LogRecord.__init__`` recomputes the file name, module, process name ... for every record;
    for the one fixed call site of the access log that is most of the cost of logging. The
    template keeps them; the per-record values (time, thread, process) are filled in here as
    ``LogRecord.__init__`` would. A custom record factory (``logging.setLogRecordFactory``) is
    always honoured: then records are made by ``Logger.makeRecord`` as usual.
    """

    __slots__ = ("_args", "_logger", "_tasks", "_template")

    def __init__(self, logger: logging.Logger, level: int, message: str) -> None:
        self._logger = logger
        self._args = (logger.name, level, __file__, 0, message, (), None)
        self._template = dict(logging.LogRecord(*self._args).__dict__)
        self._tasks = "taskName" in self._template  # Python >= 3.12

    def make(self, fields: dict[str, Any]) -> logging.LogRecord:
        """A record holding ``fields`` as attributes, as ``extra=fields`` would."""
        if logging.getLogRecordFactory() is not logging.LogRecord:
            record = self._logger.makeRecord(*self._args)
            record.__dict__.update(fields)
            return record
        record = logging.LogRecord.__new__(logging.LogRecord)
        now = time.time()  # the record's wall-clock timestamp (LogRecord.created), not a duration
        extra = record.__dict__
        extra.update(self._template)
        extra.update(fields)
        extra["created"] = now
        extra["msecs"] = int((now - int(now)) * 1000) + 0.0
        extra["relativeCreated"] = (now - _START_TIME) * 1000
        if logging.logThreads:
            extra["thread"] = threading.get_ident()
            extra["threadName"] = threading.current_thread().name
        if logging.logProcesses:
            extra["process"] = _PID[0]
        if self._tasks and getattr(logging, "logAsyncioTasks", False):
            try:
                task = asyncio.current_task()
            except RuntimeError:  # no running loop
                task = None
            extra["taskName"] = task.get_name() if task is not None else None
        # Lets JsonLogFormatter take the fields as they are instead of scanning the record,
        # unless a filter adds attributes on the way (then the length differs).
        extra[FIELDS_MARK] = (fields, len(extra) + 1)
        return record


def _strings(option: str, values: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{option} must be a sequence of strings, not a single string")
    out = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{option} entries must be non-empty strings: {value!r}")
        out.append(value)
    return out


def _names(option: str, values: Sequence[str]) -> frozenset[str]:
    try:
        return frozenset(header_name(value).decode("ascii") for value in _strings(option, values))
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None


# CLIENT_CLOSED_REQUEST (the status of a client gone before the response completed) is the kit's
# one constant, asgi_kit._asgi.observer's, still importable from here.
__all__ = ["CLIENT_CLOSED_REQUEST", "LoggingMiddleware"]
