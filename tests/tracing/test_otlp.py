"""End to end: uvicorn serves a traced app; the real OTLP/HTTP exporter sends to a loopback receiver."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from asgi_kit.tracing import TracingMiddleware, init_tracer
from tests.harness.apps import build_app
from tests.harness.servers import serve

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Receiver:
    """A minimal OTLP/HTTP trace receiver: decodes every POST /v1/traces it gets."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self.changed = threading.Condition()

    def spans(self) -> list[tuple[Span, dict[str, Any]]]:
        """Every received span with its resource attributes."""
        found: list[tuple[Span, dict[str, Any]]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((span, resource) for span in scope_spans.spans)
        return found

    def wait_for_spans(self, count: int, timeout: float) -> list[tuple[Span, dict[str, Any]]]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.spans()) >= count, timeout)
            return self.spans()


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


def _attributes(span: Span) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in span.attributes}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            encoding = self.headers.get("content-encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with state.changed:
                state.paths.append(self.path)
                state.content_types.append(self.headers.get("content-type", ""))
                state.requests.append(request)
                state.changed.notify_all()
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


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
