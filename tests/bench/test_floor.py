"""The OpenTelemetry SDK floor: the reference span a tracing layer is compared with."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_kit._asgi.types import Message, Receive, Scope, Send
from benchmarks.suite._apps import OtelSdkFloor, bearer_values, request_scope


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _run(app: OtelSdkFloor, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, _receive, send))
    return sent


def test_floor_records_one_bare_server_span_current_for_the_app(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """One sampled SERVER span per request, current while the app runs, with no attributes."""
    seen: list[trace.Span] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(trace.get_current_span())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    floor = OtelSdkFloor(app, tracer_provider=provider)
    for _ in range(2):
        sent = _run(floor, request_scope(bearer_values(1, cold=False)[0]))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert all(span.kind is trace.SpanKind.SERVER and not span.attributes for span in spans)
    assert spans[0].context.trace_id != spans[1].context.trace_id  # each request a new trace
    assert [s.get_span_context().span_id for s in seen] == [span.context.span_id for span in spans]
    assert trace.get_current_span() is trace.INVALID_SPAN  # detached after each request


def test_floor_passes_non_http_scopes_through_untraced(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    called: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope["type"])

    asyncio.run(OtelSdkFloor(app, tracer_provider=provider)({"type": "lifespan"}, _receive, _noop_send))
    assert called == ["lifespan"] and exporter.get_finished_spans() == ()


async def _noop_send(message: Message) -> None:
    return None


def test_semconv_floor_hands_the_sdk_exactly_what_the_kit_records(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The semconv floor's span carries the same name and attributes as the kit's layer for the
    bench request, so "the SDK's share" stays the share of what the kit really records."""
    from asgi_kit.tracing import TracingMiddleware
    from benchmarks.suite._apps import bare_asgi_app

    scope_value = bearer_values(1, cold=False)[0]
    _run(OtelSdkFloor(bare_asgi_app, tracer_provider=provider, semconv=True), request_scope(scope_value))
    _run(TracingMiddleware(bare_asgi_app, tracer_provider=provider), request_scope(scope_value))
    floor, kit = exporter.get_finished_spans()
    assert floor.name == kit.name == "GET /items/{item_id}"
    assert dict(floor.attributes or {}) == dict(kit.attributes or {})
    assert len(kit.attributes or {}) == 11
