"""``TracingMiddleware``: one OpenTelemetry server span per HTTP request.

Reads ``traceparent``/``tracestate`` with our own exact W3C parser, starts a ``SERVER`` span
with the stable HTTP semantic-convention attributes, names it ``METHOD /route/template``
once the app has routed the request, and makes it current for the app (OpenTelemetry
context and :data:`asgi_kit._asgi.context.trace_ids_var`, so log records and outbound HTTP
calls carry its ids).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Sequence
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracer,
    ProxyTracerProvider,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TracerProvider,
    set_span_in_context,
)
from opentelemetry.trace import TraceState as OtelTraceState

from asgi_kit._asgi.context import TraceIds, trace_ids_var
from asgi_kit._asgi.observer import ResponseObserver, observe_response
from asgi_kit._asgi.options import check_callable, check_instance
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.redaction import (
    SECRET_QUERY_PARAMS,
    redact_query_values,
    redact_url_credentials,
    secret_names,
)
from asgi_kit._asgi.routes import RouteLookup, RouteResolver, resolve_route_template
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit._version import __version__
from asgi_kit.tracing.propagation import (
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    context_from_values,
    format_tracestate,
)

INSTRUMENTATION_NAME: Final = "asgi_kit.tracing"
_log = logging.getLogger("asgi_kit.tracing")

#: Methods semantic conventions know; anything else is recorded as ``_OTHER``.
KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
#: Query parameters whose values never reach a span (compared case-insensitively).
MAX_ATTRIBUTE_LENGTH: Final = 1024

_HOST: Final = b"host"
_USER_AGENT: Final = b"user-agent"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_ERROR_STATUS: Final = Status(StatusCode.ERROR)
_HOSTS_KEPT: Final = 64
_FLAGS_SUFFIX: Final = tuple(f"-{flags:02x}" for flags in range(256))
_ROOT: Final = Context()  # a request without a valid traceparent starts a new trace


class TracingMiddleware:
    """Trace every HTTP request as an OpenTelemetry ``SERVER`` span.

    Place it outermost, right after ``RequestIDMiddleware``, so the span covers every other
    layer and their log records carry its ids. Reads the ``traceparent``, ``tracestate``,
    ``host`` and ``user-agent`` headers; writes the span, the current OpenTelemetry context
    and :data:`~asgi_kit._asgi.context.trace_ids_var` for the duration of the request (reset
    with their tokens). Never records other headers or secret query values; adds no spans
    for ASGI ``send``/``receive``; lifespan and websocket scopes pass through untouched.

    ``http.response.status_code`` is the response's status, or 499 when the client went away
    before the response completed (then the span's status stays unset, as for any 4xx): the
    outcome the access log and the metrics report too
    (:class:`~asgi_kit._asgi.observer.ResponseObserver`). An app that raised before starting
    a response leaves the status out (none was sent through this layer) and sets ``ERROR``.

    With no ``tracer_provider`` it follows OpenTelemetry's global provider, and while that is
    unset or the no-op provider the layer passes requests straight through at almost no cost.

    Args:
        app: the ASGI app to wrap.
        tracer_provider: where spans go; ``None`` follows the global provider.
        exclude_paths: exact paths (or ``/prefix/*`` subtrees) never traced.
        route_resolver: reads the route template from the scope after the app ran;
            defaults to the kit's resolver (Starlette, FastAPI, Litestar, ``asgi_kit.route``).
        record_query: record ``url.query`` (secret parameter values replaced by ``REDACTED``).
        redact_query_params: more parameter names whose values are redacted, on top of the
            kit's list (:data:`~asgi_kit._asgi.redaction.SECRET_QUERY_PARAMS`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: TracerProvider | None = None,
        exclude_paths: Sequence[str] = (),
        route_resolver: RouteResolver | None = None,
        record_query: bool = True,
        redact_query_params: Iterable[str] = (),
    ) -> None:
        if tracer_provider is not None:
            check_instance(
                "tracer_provider", tracer_provider, TracerProvider, "an opentelemetry TracerProvider or None"
            )
        if route_resolver is not None:
            check_callable("route_resolver", route_resolver)
        self.app = app
        self._exclude = PathFilter(exclude_paths)
        self._resolve_route = route_resolver or resolve_route_template
        self._lookup_route = RouteLookup(app)  # the router asked, for a request answered before it ran
        self._record_query = bool(record_query)
        self._redacted = secret_names("redact_query_params", redact_query_params, SECRET_QUERY_PARAMS)
        self._hosts: dict[tuple[bytes, str], tuple[str, int | None]] = {}
        self._last_user_agent: tuple[bytes, str] = (b"", "")
        self._follow_global = tracer_provider is None
        self._tracer: Tracer | None = None
        if tracer_provider is not None:
            self._tracer = _real_tracer(tracer_provider)
        else:
            self._adopt_global()

    def _adopt_global(self) -> Tracer | None:
        # Until the app calls set_tracer_provider (often in its lifespan, after this layer was
        # built) the global is a proxy: stay a pass-through and look again next request. The
        # global can be set only once, so the first real answer is final.
        provider = trace.get_tracer_provider()
        if isinstance(provider, ProxyTracerProvider):
            return None
        self._follow_global = False
        self._tracer = _real_tracer(provider)
        return self._tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        tracer = self._tracer
        if tracer is None and (not self._follow_global or (tracer := self._adopt_global()) is None):
            await self.app(scope, receive, send)
            return
        await self._traced(tracer, scope, receive, send)

    async def _traced(self, tracer: Tracer, scope: Scope, receive: Receive, send: Send) -> None:
        # Separate from __call__ so pass-through requests never pay for this frame's cells.
        method: str = scope["method"]
        traceparent: bytes | None = None
        duplicate = False
        tracestate: list[bytes] = []
        host: bytes | None = None
        user_agent: bytes | None = None
        for name, value in scope["headers"]:
            if name == TRACEPARENT_HEADER:
                duplicate = traceparent is not None
                traceparent = value
            elif name == TRACESTATE_HEADER:
                tracestate.append(value)
            elif name == _HOST:
                host = value
            elif name == _USER_AGENT:
                user_agent = value

        if traceparent is None:  # no remote parent: a new trace (most requests at the edge)
            parent_context, state_header = _ROOT, None
        else:
            parent_context, state_header = _parent_context(traceparent, tracestate, duplicate)
        known = method in KNOWN_METHODS
        span = tracer.start_span(
            method if known else "HTTP",
            parent_context,
            SpanKind.SERVER,
            self._start_attributes(scope, method, known, host, user_agent),
        )
        span_context = span.get_span_context()
        # to_bytes().hex() rather than f"{id:032x}": no format-spec parsing, half the time.
        try:
            trace_hex = span_context.trace_id.to_bytes(16, "big").hex()
            span_hex = span_context.span_id.to_bytes(8, "big").hex()
        except OverflowError:  # an id generator outside the W3C sizes: written as it is
            trace_hex = f"{span_context.trace_id:032x}"
            span_hex = f"{span_context.span_id:016x}"
        ids_token = trace_ids_var.set(
            TraceIds(
                trace_hex,
                span_hex,
                f"00-{trace_hex}-{span_hex}{_FLAGS_SUFFIX[span_context.trace_flags & 0xFF]}",
                state_header,
            )
        )
        context_token = otel_context.attach(set_span_in_context(span))
        observer = observe_response(receive, send)
        error_type: str | None = None
        try:
            await self.app(scope, observer.receive, observer.send)
        except BaseException as exc:
            observer.app_raised(exc)
            if isinstance(exc, Exception):
                error_type = _record_exception(span, exc)
            raise
        finally:
            otel_context.detach(context_token)
            trace_ids_var.reset(ids_token)
            self._finish(span, scope, method if known else "HTTP", observer, error_type)

    def _finish(
        self, span: Span, scope: Scope, name: str, observer: ResponseObserver, error_type: str | None
    ) -> None:
        """Name the span for the route the app matched, record the outcome and end it."""
        # One set_attribute per value rather than one set_attributes(dict): the SDK validates a
        # mapping with two ABC isinstance checks and copies it first (measured ~25 % slower for
        # the usual two values).
        try:
            template = self._resolve_route(scope) or self._lookup_route(scope)
        except Exception:  # a broken user resolver must not fail the request
            _log.exception("route_resolver failed; span named by method only")
            template = None
        if template:
            span.update_name(f"{name} {template}")
            span.set_attribute("http.route", template)
        # The status the access log and the metrics report too; none when no response started
        # and the client is still there (semantic conventions: only a status that was sent, and
        # the server's own 500 is not sent through this layer).
        if observer.started or observer.client_gone:
            status = observer.final_status
            span.set_attribute("http.response.status_code", status)
            if observer.client_closed:  # no failure of the server's, whatever the app raised: a 4xx
                error_type = None
            elif status >= 500 and error_type is None:
                error_type = str(status)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(_ERROR_STATUS)
        span.end()

    def _start_attributes(
        self, scope: Scope, method: str, known: bool, host: bytes | None, user_agent: bytes | None
    ) -> dict[str, Any]:
        scheme: str = scope.get("scheme") or "http"
        attributes: dict[str, Any] = {
            "http.request.method": method if known else "_OTHER",
            "url.path": scope["path"],
            "url.scheme": scheme,
            "network.protocol.version": scope.get("http_version") or "1.1",
        }
        if not known:
            attributes["http.request.method_original"] = method[:MAX_ATTRIBUTE_LENGTH]
        if host:
            # A server answers to a handful of Host values: split each once. Bounded, since
            # clients choose the header.
            split = self._hosts.get((host, scheme))
            if split is None:
                split = _split_host(host.decode("latin-1"), scheme)
                if len(self._hosts) >= _HOSTS_KEPT:
                    self._hosts.clear()
                self._hosts[(host, scheme)] = split
            address, port = split
            attributes["server.address"] = address
            if port is not None:
                attributes["server.port"] = port
        else:
            server = scope.get("server")
            if server:
                attributes["server.address"] = server[0]
                port = server[1]
                if port is not None and type(port) is not int:
                    # granian gives the port as a string; the conventions want an int.
                    port = int(port) if str(port).isdigit() else None
                if port is not None:
                    attributes["server.port"] = port
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        if user_agent:
            # Clients send the same User-Agent request after request: decode it once.
            last = self._last_user_agent
            if user_agent != last[0]:
                last = (user_agent, user_agent[:MAX_ATTRIBUTE_LENGTH].decode("latin-1"))
                self._last_user_agent = last
            attributes["user_agent.original"] = last[1]
        if self._record_query:
            query: bytes = scope.get("query_string") or b""
            if query:
                text = query[: MAX_ATTRIBUTE_LENGTH * 2].decode("latin-1")
                attributes["url.query"] = redact_query_values(text, self._redacted)
        return attributes


def _parent_context(
    traceparent: bytes | None, tracestate: list[bytes], duplicate: bool
) -> tuple[Context, str | None]:
    """The remote parent as an OpenTelemetry context, and the tracestate header to propagate."""
    incoming = context_from_values(traceparent, tracestate, duplicate=duplicate)
    if incoming is None:
        return _ROOT, None
    parent, members = incoming
    span_context = SpanContext(
        parent.trace_id,
        parent.span_id,
        is_remote=True,
        trace_flags=TraceFlags(parent.trace_flags),
        trace_state=OtelTraceState(members) if members else None,
    )
    return set_span_in_context(NonRecordingSpan(span_context), _ROOT), (
        format_tracestate(members) if members else None
    )


def _record_exception(span: Span, exc: Exception) -> str:
    """Record ``exc`` as a span event with URL credentials scrubbed; returns its ``error.type``."""
    cls = type(exc)
    error_type = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    if span.is_recording():
        stacktrace = "".join(traceback.format_exception(exc))
        span.record_exception(
            exc,
            {
                "exception.message": redact_url_credentials(str(exc)),
                "exception.stacktrace": redact_url_credentials(stacktrace),
            },
        )
    return error_type


def _real_tracer(provider: TracerProvider) -> Tracer | None:
    tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)
    return None if isinstance(tracer, NoOpTracer) else tracer


def _split_host(host: str, scheme: str) -> tuple[str, int | None]:
    """``Host`` into address and port; the scheme's default port when none is given."""
    host = host[:MAX_ATTRIBUTE_LENGTH]
    if host.startswith("["):  # IPv6 literal
        end = host.find("]")
        address, rest = (host[1:end], host[end + 1 :]) if end != -1 else (host, "")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port_text = host.partition(":")
    if port_text.isascii() and port_text.isdigit() and len(port_text) <= 5:
        return address, int(port_text)
    return address, _DEFAULT_PORTS.get(scheme)


__all__ = ["KNOWN_METHODS", "TracingMiddleware"]
