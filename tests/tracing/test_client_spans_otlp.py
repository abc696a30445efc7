"""End to end: a service made only of the kit fans out to three URLs; OTLP shows one CLIENT span per call.

TracingMiddleware + HTTPClient under uvicorn; the upstream is another uvicorn on loopback that
records the ``traceparent`` it receives; spans leave through the real OTLP/HTTP exporter to the
loopback receiver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import TracerProvider

from asgi_kit._asgi.types import Message, Receive, Scope, Send
from asgi_kit.httpclient import HTTPClient
from asgi_kit.tracing import TracingMiddleware, init_tracer
from tests.harness.servers import serve
from tests.tracing.otlp_receiver import Receiver, attributes_of

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
PATHS = ("/a", "/b", "/c")


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


def upstream_app(seen: list[tuple[str, str | None]]) -> object:
    """An upstream that records the path and traceparent of every request."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        traceparent = headers.get(b"traceparent")
        seen.append((scope["path"], traceparent.decode() if traceparent else None))
        await _answer(send, 200, b"ok")

    return app


def service_app(upstream_url: str, provider: TracerProvider) -> object:
    """The kit alone: TracingMiddleware around an app whose one route calls three upstream URLs."""
    state: dict[str, HTTPClient] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message: Message = await receive()
                if message["type"] == "lifespan.startup":
                    client = HTTPClient(base_url=upstream_url, tracer_provider=provider)
                    state["client"] = await client.__aenter__()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["client"].aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        scope["asgi_kit.route"] = "/fanout"
        for path in PATHS:
            (await state["client"].get(path)).raise_for_status()
        await _answer(send, 200, b"fanned out")

    return TracingMiddleware(app, tracer_provider=provider)


@contextmanager
def running(endpoint: str) -> Iterator[tuple[TracerProvider, list[tuple[str, str | None]], str]]:
    provider = init_tracer("fanout", endpoint=endpoint, schedule_delay=0.05, export_timeout=5)
    seen: list[tuple[str, str | None]] = []
    try:
        with (
            serve(upstream_app(seen), "uvicorn", lifespan="off") as upstream,  # type: ignore[arg-type]
            serve(service_app(upstream.url, provider), "uvicorn", lifespan="on") as service,  # type: ignore[arg-type]
        ):
            yield provider, seen, service.url
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    "incoming",
    [f"00-{TRACE}-{PARENT}-01", "00-not-a-traceparent-01", None],
    ids=["valid", "invalid", "absent"],
)
def test_three_calls_send_three_client_span_ids_in_the_incoming_trace(
    receiver: tuple[Receiver, str], incoming: str | None
) -> None:
    """Three calls: three parent ids, each a CLIENT span child of the server span, all in one trace."""
    state, endpoint = receiver
    with running(endpoint) as (provider, seen, url):
        headers = {"traceparent": incoming} if incoming else {}
        response = httpx.get(f"{url}/fanout", headers=headers, timeout=10)
        assert response.status_code == 200
        assert provider.force_flush(10_000)
        spans = [span for span, _ in state.wait_for_spans(4, timeout=10)]

    (server,) = [span for span in spans if span.kind == Span.SpanKind.SPAN_KIND_SERVER]
    clients = [span for span in spans if span.kind == Span.SpanKind.SPAN_KIND_CLIENT]
    assert server.name == "GET /fanout" and len(clients) == 3
    if incoming and incoming.endswith(f"{PARENT}-01") and TRACE in incoming:
        assert server.trace_id.hex() == TRACE and server.parent_span_id.hex() == PARENT
    else:  # an invalid or absent traceparent: the server span starts a new trace
        assert server.trace_id.hex() != TRACE and not server.parent_span_id

    assert [path for path, _ in seen] == list(PATHS)
    sent = [traceparent.split("-") for _, traceparent in seen if traceparent]
    assert len(sent) == 3
    assert {trace_id for _, trace_id, _, _ in sent} == {server.trace_id.hex()}
    parent_ids = [parent_id for _, _, parent_id, _ in sent]
    assert len(set(parent_ids)) == 3 and server.span_id.hex() not in parent_ids
    by_id = {span.span_id.hex(): span for span in clients}
    for (path, _), parent_id in zip(seen, parent_ids, strict=True):
        client = by_id[parent_id]
        assert client.trace_id == server.trace_id and client.parent_span_id == server.span_id
        assert client.name == "GET"
        attributes = attributes_of(client)
        assert attributes["url.full"].endswith(path) and attributes["http.response.status_code"] == 200
        assert attributes["http.request.method"] == "GET" and attributes["server.address"] == "127.0.0.1"
