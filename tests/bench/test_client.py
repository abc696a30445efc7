"""The client-span bench apps: the floor hands the SDK exactly the span the kit records."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from asgi_kit._asgi.types import ASGIApp, Message
from benchmarks.suite._apps import BODY, bare_asgi_app, bearer_values, request_scope
from benchmarks.suite.client import ClientCallBase, ClientSpanFloor, KitClientSpan
from benchmarks.suite.driver import evaluate_targets
from benchmarks.suite.variants import TARGETS


def _run(app: ASGIApp) -> bytes:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(request_scope(bearer_values(1, cold=False)[0]), receive, send))
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("new_url", [False, True])
def test_client_floor_records_the_same_span_as_the_kit(
    provider: TracerProvider, exporter: InMemorySpanExporter, new_url: bool
) -> None:
    """floor.otel_sdk.client and kit.httpclient.span(.new_url) end one CLIENT span, same name and attributes."""
    for app in (
        ClientSpanFloor(bare_asgi_app, tracer_provider=provider),
        KitClientSpan(bare_asgi_app, tracer_provider=provider, new_url=new_url),
    ):
        assert _run(app) == BODY
    floor, kit = exporter.get_finished_spans()
    assert floor.kind is kit.kind is SpanKind.CLIENT and floor.name == kit.name == "GET"
    assert dict(floor.attributes or {}) == dict(kit.attributes or {})
    assert kit.attributes is not None and kit.attributes["http.response.status_code"] == 200


def test_base_and_no_provider_record_nothing(exporter: InMemorySpanExporter) -> None:
    """The base and the kit with the global provider unset answer without making a span."""
    no_provider = KitClientSpan(bare_asgi_app, tracer_provider=None, copies=10)
    assert no_provider.spans.tracer is None
    for app in (
        ClientCallBase(bare_asgi_app),
        no_provider,
        KitClientSpan(bare_asgi_app, tracer_provider=None),
    ):
        assert _run(app) == BODY
    assert exporter.get_finished_spans() == ()


def test_absolute_target_bounds_the_overhead_in_microseconds() -> None:
    """An absolute target compares the numerator's overhead per copy, in µs, with its limit."""
    (target,) = [t for t in TARGETS if t.name == "client_span_no_provider"]
    (row,) = evaluate_targets({"kit.httpclient.span.no_provider.x10": 3000.0}, [target])
    assert (row["measured"], row["passed"]) == (0.3, True)
    (row,) = evaluate_targets({"kit.httpclient.span.no_provider.x10": 8000.0}, [target])
    assert row["passed"] is False
