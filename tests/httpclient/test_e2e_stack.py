"""End to end through the real layers: RequestIDMiddleware and TracingMiddleware in front of an
app that calls an upstream with HTTPClient; the upstream sees the incoming trace and request ids,
and the kit's log records inside the request carry the span's trace id."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_kit import Stack
from asgi_kit._asgi.lifespan import LifespanHooksMiddleware, answer_lifespan
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.httpclient import HTTPClient
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.testing.fake_upstream import FakeOpenAI
from asgi_kit.tracing import TracingMiddleware
from tests.harness.servers import serve

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_upstream_sees_incoming_trace_and_request_id() -> None:
    """The outbound call carries the incoming request id and continues the incoming trace."""
    upstream = FakeOpenAI()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    log = io.StringIO()
    app_log = new_logger("e2e-stack", stream=log)
    with serve(upstream) as up:
        client = HTTPClient(base_url=up.url)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await answer_lifespan(receive, send)
                return
            scope["asgi_kit.route"] = "/call"
            app_log.info("calling upstream")
            response = await client.get("/v1/models", headers={"Authorization": "Bearer sk-e2e"})
            body = json.dumps({"upstream_status": response.status}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        async def open_client() -> None:
            await client.__aenter__()

        async def close_client() -> None:
            await client.aclose()

        stack = (
            Stack()
            .use(LifespanHooksMiddleware, on_startup=[open_client], on_shutdown=[close_client])
            .use(RequestIDMiddleware)
            .use(TracingMiddleware, tracer_provider=provider)
            .use(LoggingMiddleware, logger=app_log)
        )
        inner = stack.wrap(app)

        with serve(inner, lifespan="on") as gateway:
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                response = await http.get(
                    "/call", headers={"traceparent": INCOMING, "x-request-id": "req-e2e-1"}
                )
    assert response.status_code == 200 and response.json() == {"upstream_status": 200}
    assert response.headers["x-request-id"] == "req-e2e-1"
    seen = upstream.requests[-1]
    assert seen.header("x-request-id") == "req-e2e-1"
    outbound = seen.header("traceparent")
    assert outbound is not None and outbound.split("-")[1] == TRACE_ID
    server_span = next(s for s in spans.get_finished_spans() if s.name == "GET /call")
    assert outbound.split("-")[2] == format(server_span.context.span_id, "016x")
    records: list[dict[str, Any]] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert {r["message"] for r in records} >= {"calling upstream", "request"}
    for record in records:
        assert record["request_id"] == "req-e2e-1"
        assert record["trace_id"] == TRACE_ID
    provider.shutdown()
