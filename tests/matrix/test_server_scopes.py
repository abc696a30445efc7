"""What each server puts in the scope, as the kit's layers read it (granian differs in places)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import build_app
from tests.harness.servers import SERVERS, serve

pytestmark = pytest.mark.integration


def eventually_sync(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    """The span ends just after the response is sent: poll briefly instead of sleeping."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return result


@pytest.mark.parametrize("server", SERVERS)
def test_server_port_is_an_int_without_a_host_header(server: str) -> None:
    """With no Host header the span's server.port comes from scope["server"], as an int everywhere."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with serve(TracingMiddleware(build_app("bare"), tracer_provider=provider), server) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"GET /ok HTTP/1.0\r\n\r\n")
            while sock.recv(4096):
                pass
        assert eventually_sync(lambda: spans.get_finished_spans())
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["server.port"] == served.port
    assert type(span.attributes["server.port"]) is int
    provider.shutdown()


@pytest.mark.parametrize(
    ("port", "expected"), [(8000, 8000), ("8000", 8000), ("no-port", None), (None, None)]
)
async def test_server_port_from_the_scope_is_normalised(port: Any, expected: int | None) -> None:
    """A port given as a string (granian) becomes an int; one that is no number is left out."""
    import httpx

    from asgi_kit._asgi.types import Receive, Scope, Send

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    traced = TracingMiddleware(build_app("bare"), tracer_provider=provider)

    async def as_the_server_says(scope: Scope, receive: Receive, send: Send) -> None:
        scope["server"] = ("h", port)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"]
        await traced(scope, receive, send)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(as_the_server_says), base_url="http://t"
    ) as client:
        assert (await client.get("/ok")).status_code == 200
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes.get("server.port") == expected
    provider.shutdown()


@pytest.mark.parametrize("server", SERVERS)
def test_request_id_never_leaks_into_the_lifespan_state(server: str) -> None:
    """Each request gets its own copy of the lifespan state, so the request id stays per request."""
    import httpx

    from asgi_kit._asgi.types import Receive, Scope, Send
    from asgi_kit.logging import RequestIDMiddleware

    lifespan_state: dict[str, Any] = {}
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["pool"] = "ready"
                    lifespan_state.update(scope["state"])
                    lifespan_state["dict"] = scope["state"]
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["state"]["pool"] == "ready"
        seen.append(scope["state"]["request_id"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve(RequestIDMiddleware(app), server, lifespan="on") as served:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            ids = [client.get("/").headers["x-request-id"] for _ in range(2)]
    assert seen == ids and ids[0] != ids[1]
    assert "request_id" not in lifespan_state["dict"]
