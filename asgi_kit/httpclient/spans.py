"""One OpenTelemetry ``CLIENT`` span per request sent, after the stable HTTP client conventions.

:class:`ClientSpans` is the part of :class:`~asgi_kit.httpclient.HTTPClient` that talks to
OpenTelemetry. It uses the ``opentelemetry.trace`` API directly (not :mod:`asgi_kit.tracing`:
concerns do not import each other) and imports it only when the client opens, so the
``tracing`` extra stays optional. Whether spans are recorded is decided once, when the client
opens: with no ``tracer_provider`` and OpenTelemetry's global provider still unset (the
API's proxy), with the no-op provider, or without ``opentelemetry-api`` installed, nothing
is ever started and a call pays a few ``is None`` tests.

Each physical request (every attempt, every redirect hop) gets its own span, a child of the
span current in the caller's context (the server span of ``TracingMiddleware``, or one the
app opened; none: a new trace). It is named ``{method}`` (``HTTP`` for a method the
conventions do not know) and carries ``http.request.method`` (``_OTHER`` plus
``http.request.method_original`` for an unknown one), ``server.address``, ``server.port``,
``url.full`` (user name and password replaced by ``REDACTED``, and the values of secret query
parameters too), ``http.request.resend_count`` from the second request of a call on,
``http.response.status_code`` when a response came, and ``error.type`` when the request
failed: the status code as a string for 4xx and 5xx, the kit's exception class for a
transport failure. The status is ``Error`` in those cases (for a client 4xx is an error too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from multidict import CIMultiDict
from yarl import URL

from asgi_kit._asgi.redaction import REDACTED, SECRET_QUERY_PARAMS, redact_query_values
from asgi_kit._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

INSTRUMENTATION_NAME: Final = "asgi_kit.httpclient"
#: Methods the conventions know (RFC 9110 and PATCH), plus QUERY as ``TracingMiddleware`` has it.
KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
MAX_ATTRIBUTE_LENGTH: Final = 1024
#: URLs whose span attributes a client keeps (a client calls a handful of endpoints).
TARGETS_KEPT: Final = 64
_FLAGS_SUFFIX: Final = tuple(f"-{flags:02x}" for flags in range(256))


def url_attributes(url: URL) -> tuple[str, str, int | None]:
    """``(url.full, server.address, server.port)`` for ``url``, secrets redacted."""
    if url.raw_user is not None or url.raw_password is not None:
        url = url.with_user(REDACTED).with_password(REDACTED if url.raw_password is not None else None)
    full = str(url)
    query = url.raw_query_string
    if query:
        redacted = redact_query_values(query, SECRET_QUERY_PARAMS)
        if redacted != query:
            # In the raw form a "?" can only open the query: userinfo and path have theirs encoded.
            fragment = url.raw_fragment
            full = f"{full.partition('?')[0]}?{redacted}" + (f"#{fragment}" if fragment else "")
    return full, url.host or "", url.port


def error_type_of(cls: type[BaseException]) -> str:
    """``error.type`` for an exception class: its fully qualified name (builtins unqualified)."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class ClientSpans:
    """Starts and ends the ``CLIENT`` spans of one :class:`~asgi_kit.httpclient.HTTPClient`.

    Args:
        tracer_provider: where spans go; ``None`` uses OpenTelemetry's global provider as it is
            when :meth:`resolve` runs (the client opening).
    """

    __slots__ = ("_client_kind", "_error_status", "_provider", "_targets", "tracer")

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._provider = tracer_provider
        #: The tracer spans are started with; ``None`` while spans are off (the hot-path test).
        self.tracer: Tracer | None = None
        # Set by resolve(), before any span exists (the API is imported only there).
        self._client_kind: Any = None
        self._error_status: Any = None
        self._targets: dict[str, tuple[str, str, int | None]] = {}

    def target(self, key: str | None, url: URL) -> tuple[str, str, int | None]:
        """:func:`url_attributes` of ``url``, remembered under ``key`` (the URL as the caller wrote it).

        A client calls the same few endpoints again and again, and reading a fresh ``URL``'s
        parts costs more than the rest of the span work: each is computed once. Bounded,
        since callers choose URLs; ``key=None`` (a call with ``params``) is never kept.
        """
        if key is None:
            return url_attributes(url)
        found = self._targets.get(key)
        if found is None:
            found = url_attributes(url)
            if len(self._targets) >= TARGETS_KEPT:
                self._targets.clear()
            self._targets[key] = found
        return found

    def resolve(self) -> None:
        """Decide, once, whether spans are recorded (called when the client opens)."""
        try:
            from opentelemetry import trace
        except ImportError:  # the tracing extra is not installed: spans are off
            self.tracer = None
            return
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        tracer: Tracer | None = None
        if not isinstance(provider, trace.ProxyTracerProvider):
            tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)
            if isinstance(tracer, trace.NoOpTracer):
                tracer = None
        self._client_kind = trace.SpanKind.CLIENT
        self._error_status = trace.Status(trace.StatusCode.ERROR)
        self.tracer = tracer

    def start(
        self,
        tracer: Tracer,
        method: str,
        target: tuple[str, str, int | None],
        resend_count: int,
        headers: CIMultiDict[str] | None,
    ) -> Span:
        """Start the span of one request and, given ``headers``, put its ``traceparent`` there.

        ``target`` is :func:`url_attributes` of the URL. ``tracestate`` is the span's own
        (what its parent carried, as the sampler left it), or removed when it has none.
        """
        known = method in KNOWN_METHODS
        full, address, port = target
        attributes: dict[str, Any] = {
            "http.request.method": method if known else "_OTHER",
            "server.address": address,
            "url.full": full,
        }
        if port is not None:
            attributes["server.port"] = port
        if not known:
            attributes["http.request.method_original"] = method[:MAX_ATTRIBUTE_LENGTH]
        if resend_count:
            attributes["http.request.resend_count"] = resend_count
        span = tracer.start_span(method if known else "HTTP", None, self._client_kind, attributes)
        if headers is not None:
            context = span.get_span_context()
            # to_bytes().hex(): no format-spec parsing (the server span formats its ids the same way).
            try:
                ids = (
                    f"{context.trace_id.to_bytes(16, 'big').hex()}-{context.span_id.to_bytes(8, 'big').hex()}"
                )
            except OverflowError:  # an id generator outside the W3C sizes: written as it is
                ids = f"{context.trace_id:032x}-{context.span_id:016x}"
            headers["traceparent"] = f"00-{ids}{_FLAGS_SUFFIX[context.trace_flags & 0xFF]}"
            state = context.trace_state
            if state:
                headers["tracestate"] = state.to_header()
            elif "tracestate" in headers:
                del headers["tracestate"]
        return span

    def end(self, span: Span, status: int | None, error_type: str | None = None) -> None:
        """Record the outcome (a status code, an ``error.type``, or both) and end the span."""
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400 and error_type is None:
                error_type = str(status)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(self._error_status)
        span.end()


@dataclass(slots=True)
class CallSpans:
    """The client spans of one call (all its attempts and redirect hops); lives in its locals.

    Exists only while spans are on, so a call with spans off carries a single ``None``.

    Attributes:
        spans: the client's :class:`ClientSpans`.
        tracer: the tracer spans start with.
        target: :func:`url_attributes` of the call's URL.
        inject_trace: whether each request carries its own span's ``traceparent``.
        span: the span of the request in flight, until it ends or is handed to a stream.
        sent: requests sent so far (the next one's ``http.request.resend_count``).
    """

    spans: ClientSpans
    tracer: Tracer
    target: tuple[str, str, int | None]
    inject_trace: bool
    span: Span | None = None
    sent: int = 0

    def start(self, method: str, url: URL, call_url: URL, headers: CIMultiDict[str]) -> None:
        """Start the span of the request about to go to ``url`` (a redirect hop when not ``call_url``)."""
        where = self.target if url is call_url else url_attributes(url)
        self.span = self.spans.start(
            self.tracer, method, where, self.sent, headers if self.inject_trace else None
        )
        self.sent += 1

    def end(self, status: int | None, error_type: str | None = None) -> None:
        """End the span in flight, if any, with its outcome."""
        span, self.span = self.span, None
        if span is not None:
            self.spans.end(span, status, error_type)

    def hand_over(self) -> Span | None:
        """The span in flight, no longer this call's to end (a stream ends it)."""
        span, self.span = self.span, None
        return span


__all__ = [
    "INSTRUMENTATION_NAME",
    "KNOWN_METHODS",
    "REDACTED",
    "CallSpans",
    "ClientSpans",
    "error_type_of",
    "url_attributes",
]
