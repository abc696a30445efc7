"""Span names and status under bare ASGI, Starlette, FastAPI and Litestar (same routes)."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import FRAMEWORKS, build_app


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("path", "status", "name", "route"),
    [
        ("/ok", 200, "GET /ok", "/ok"),
        ("/items/7", 200, "GET /items/{item_id}", "/items/{item_id}"),
        ("/nowhere/42", 404, "GET", None),
    ],
)
async def test_span_name_uses_route_template(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    framework: str,
    path: str,
    status: int,
    name: str,
    route: str | None,
) -> None:
    """The span is named METHOD /template from the framework's router; unmatched is the method."""
    app = TracingMiddleware(build_app(framework), tracer_provider=provider)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get(path)
    assert response.status_code == status
    (span,) = exporter.get_finished_spans()
    # Litestar keeps the type in its template ({item_id:int}); strip it for the comparison.
    assert span.name.replace(":int}", "}") == name
    assert (span.attributes or {}).get("http.route", "").replace(":int}", "}") == (route or "")  # type: ignore[union-attr]
    assert span.attributes["url.path"] == path  # type: ignore[index]
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_failing_handler_is_an_error_span(
    provider: TracerProvider, exporter: InMemorySpanExporter, framework: str
) -> None:
    """A handler that raises gives an ERROR span named for its route, with error.type set."""
    app = TracingMiddleware(build_app(framework), tracer_provider=provider)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /boom"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] in ("RuntimeError", "500")  # type: ignore[index, operator]
