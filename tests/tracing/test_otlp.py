"""End to end: uvicorn serves a traced app; the real OTLP/HTTP exporter sends to a loopback receiver."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from asgi_kit.tracing import TracingMiddleware, init_tracer
from tests.harness.apps import build_app
from tests.harness.servers import serve
from tests.tracing.otlp_receiver import Receiver
from tests.tracing.otlp_receiver import attributes_of as _attributes

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_spans_reach_a_real_otlp_receiver(receiver: tuple[Receiver, str]) -> None:
    """Spans exported over OTLP/HTTP have the route names, semconv attributes and incoming trace id."""
    state, endpoint = receiver
    provider = init_tracer("orders-api", endpoint=endpoint, schedule_delay=0.05, export_timeout=5)
    app = TracingMiddleware(build_app("fastapi"), tracer_provider=provider)
    try:
        with serve(app, "uvicorn") as served, httpx.Client(base_url=served.url, timeout=10) as client:
            traced = client.get(
                "/items/7?token=s3cr3t&x=1",
                headers={
                    "traceparent": f"00-{TRACE}-{PARENT}-01",
                    "tracestate": "vendor=abc",
                    "user-agent": "e2e/1",
                },
            )
            fresh = client.get("/nowhere", headers={"authorization": "Bearer s3cr3t"})
            failed = client.get("/boom")
        assert (traced.status_code, fresh.status_code, failed.status_code) == (200, 404, 500)
        assert provider.force_flush(10_000)
        spans = state.wait_for_spans(3, timeout=10)
    finally:
        provider.shutdown()

    assert set(state.paths) == {"/v1/traces"}
    assert set(state.content_types) == {"application/x-protobuf"}
    by_name = {span.name: (span, resource) for span, resource in spans}
    assert set(by_name) == {"GET /items/{item_id}", "GET", "GET /boom"}

    span, resource = by_name["GET /items/{item_id}"]
    assert resource["service.name"] == "orders-api"
    assert span.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert span.trace_id.hex() == TRACE
    assert span.parent_span_id.hex() == PARENT
    assert span.trace_state == "vendor=abc"
    attributes = _attributes(span)
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/items/{item_id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == "/items/7"
    assert attributes["url.query"] == "token=REDACTED&x=1"
    assert attributes["url.scheme"] == "http"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["user_agent.original"] == "e2e/1"
    assert attributes["network.protocol.version"] == "1.1"
    assert span.status.code == Status.StatusCode.STATUS_CODE_UNSET

    unmatched, _ = by_name["GET"]
    assert unmatched.trace_id.hex() != TRACE and not unmatched.parent_span_id
    assert _attributes(unmatched)["http.response.status_code"] == 404

    boom, _ = by_name["GET /boom"]
    assert boom.status.code == Status.StatusCode.STATUS_CODE_ERROR
    assert _attributes(boom)["error.type"] == "RuntimeError"
    assert [event.name for event in boom.events] == ["exception"]

    for request in state.requests:
        assert b"s3cr3t" not in request.SerializeToString()
