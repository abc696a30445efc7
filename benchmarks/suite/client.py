"""What an HTTPClient call's CLIENT span costs, against what the OpenTelemetry SDK itself charges.

A whole HTTP call is far too slow and noisy (a loopback round trip is hundreds of
microseconds) to resolve a span of a few microseconds, so these apps run, once per bench
request, exactly the span work :class:`~asgi_kit.httpclient.HTTPClient` does for one request
sent, around the bare app:

- :class:`ClientCallBase` (the base): what every call does with or without spans that the
  span work reads: parse the URL, build the header multidict.
- :class:`ClientSpanFloor`: the base plus only the SDK calls a client span needs: start a
  ``CLIENT`` span under the current context with the attributes the kit records (constants
  prepared once), read its context (to propagate it), set the status code, end it.
- :class:`KitClientSpan`: the base plus the kit's own steps, the ones ``HTTPClient`` takes:
  the per-call :class:`~asgi_kit.httpclient.spans.CallSpans`,
  :meth:`~asgi_kit.httpclient.spans.ClientSpans.target` (``url.full`` and ``server.*`` of
  the URL, computed once per URL as the client does; ``new_url=True``: computed afresh every
  time, as for a call with ``params``), then
  :meth:`~asgi_kit.httpclient.spans.CallSpans.start` (attributes, span, ``traceparent``
  into the headers) and :meth:`~asgi_kit.httpclient.spans.CallSpans.end`.
  With no provider configured (``kit.httpclient.span.no_provider.x10``) the same steps run
  with spans off (read the decision, store the call's one span field, the tests that skip the
  span), ten times per request: one is a few tens of nanoseconds, below what the base's noise
  lets a single copy resolve.
"""

from __future__ import annotations

from typing import Any, Final

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from benchmarks.suite._apps import SkipVariant, bare_asgi_app, load
from benchmarks.suite.context import BenchContext

#: Spans-off code paths per bench request in ``kit.httpclient.span.no_provider.x10``.
NO_PROVIDER_COPIES: Final = 10
#: The URL each bench call targets (an Azure-OpenAI-shaped URL: a query, no secret in it).
CLIENT_URL: Final = "https://llm.example.com/openai/deployments/gpt/chat/completions?api-version=2024-06-01"
_BASE_HEADERS: Final = (("Content-Type", "application/json"), ("Accept", "application/json"))


class ClientCallBase:
    """The base: the per-call work a span reads (a fresh URL, the header multidict), then the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._url, self._headers = load("yarl", "URL")[0], load("multidict", "CIMultiDict")[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._url(CLIENT_URL)
        self._headers(_BASE_HEADERS)
        await self.app(scope, receive, send)


class ClientSpanFloor:
    """The SDK's own charge for the client span the kit records: its calls, nothing else."""

    def __init__(self, app: ASGIApp, *, tracer_provider: Any) -> None:
        (span_kind,) = load("opentelemetry.trace", "SpanKind")
        (url_attributes,) = load("asgi_kit.httpclient.spans", "url_attributes")
        self.app = app
        self._url, self._headers = load("yarl", "URL")[0], load("multidict", "CIMultiDict")[0]
        self._tracer = tracer_provider.get_tracer("asgi_kit.bench.floor")
        self._client = span_kind.CLIENT
        full, address, port = url_attributes(self._url(CLIENT_URL))
        self.attributes: dict[str, Any] = {
            "http.request.method": "GET",
            "server.address": address,
            "url.full": full,
            "server.port": port,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._url(CLIENT_URL)
        self._headers(_BASE_HEADERS)
        span = self._tracer.start_span("GET", None, self._client, self.attributes)
        span.get_span_context()
        await self.app(scope, receive, send)
        span.set_attribute("http.response.status_code", 200)
        span.end()


class _Holder:
    """Stands for the call object ``HTTPClient`` keeps its one span field on."""

    __slots__ = ("spans",)

    def __init__(self) -> None:
        self.spans: Any = None


class KitClientSpan:
    """The kit's client span work for one request sent, step by step as ``HTTPClient`` does it.

    ``copies`` repeats the work that many times per bench request (the app runs once, inside
    the first): with spans off one copy is below what the base's noise lets the suite resolve.
    """

    def __init__(self, app: ASGIApp, *, tracer_provider: Any, new_url: bool = False, copies: int = 1) -> None:
        spans_cls, self._call_spans = load("asgi_kit.httpclient.spans", "ClientSpans", "CallSpans")
        self.app = app
        self.copies = copies
        self._key = None if new_url else CLIENT_URL
        self._url, self._headers = load("yarl", "URL")[0], load("multidict", "CIMultiDict")[0]
        self._holder = _Holder()
        self.spans = spans_cls(tracer_provider)
        self.spans.resolve()  # what HTTPClient does when it opens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        url = self._url(CLIENT_URL)
        headers = self._headers(_BASE_HEADERS)
        spans, holder = self.spans, self._holder
        for copy in range(self.copies):
            # _prepare: the decision, whether to inject, the call's one span field
            tracer = spans.tracer
            inject_trace = tracer is not None and "traceparent" not in headers
            holder.spans = (
                None
                if tracer is None
                else self._call_spans(spans, tracer, spans.target(self._key, url), inject_trace)
            )
            # _send: a span per request sent (its traceparent into the headers)
            call_spans = holder.spans
            if call_spans is not None:
                call_spans.start("GET", url, url, headers)
            if copy == 0:
                await self.app(scope, receive, send)
            # _attempt: the response read, the span ends with its status
            if holder.spans is not None:
                holder.spans.end(200)


def client_call_base(ctx: BenchContext) -> ASGIApp:
    return ClientCallBase(bare_asgi_app)


def client_span_floor(ctx: BenchContext) -> ASGIApp:
    return ClientSpanFloor(bare_asgi_app, tracer_provider=ctx.tracer_provider())


def kit_client_span(ctx: BenchContext) -> ASGIApp:
    return KitClientSpan(bare_asgi_app, tracer_provider=ctx.tracer_provider())


def kit_client_span_new_url(ctx: BenchContext) -> ASGIApp:
    return KitClientSpan(bare_asgi_app, tracer_provider=ctx.tracer_provider(), new_url=True)


def kit_client_span_no_provider(ctx: BenchContext) -> ASGIApp:
    """Spans off as in a process where no tracer provider is configured (the global is unset), x10."""
    (get_provider, proxy_cls) = load("opentelemetry.trace", "get_tracer_provider", "ProxyTracerProvider")
    provider = get_provider()
    if not isinstance(provider, proxy_cls):
        raise SkipVariant("a global tracer provider is set in this process")
    return KitClientSpan(bare_asgi_app, tracer_provider=None, copies=NO_PROVIDER_COPIES)


__all__ = [
    "CLIENT_URL",
    "NO_PROVIDER_COPIES",
    "ClientCallBase",
    "ClientSpanFloor",
    "KitClientSpan",
    "client_call_base",
    "client_span_floor",
    "kit_client_span",
    "kit_client_span_new_url",
    "kit_client_span_no_provider",
]
