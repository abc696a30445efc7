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
    from tests.harness.asgi import call_app, make_scope

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    await call_app(
        TracingMiddleware(build_app("bare"), tracer_provider=provider), make_scope("/ok", server=("h", port))
    )
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes.get("server.port") == expected
    provider.shutdown()
