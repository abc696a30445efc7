"""Route templates as labels under Starlette, FastAPI and Litestar (and the bare harness app)."""

from __future__ import annotations

import httpx
import pytest
from starlette.middleware import Middleware

from asgi_kit._asgi.routes import UNMATCHED_ROUTE
from asgi_kit._asgi.types import ASGIApp
from asgi_kit.metrics import MetricsMiddleware, metrics_app, register_metrics
from tests.harness.apps import FRAMEWORKS, build_app


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_route_templates_per_framework(framework: str) -> None:
    """Each framework's matched template is the route label; unmatched paths collapse; 500s count."""
    metrics = register_metrics(framework)
    app = MetricsMiddleware(build_app(framework), metrics=metrics)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/items/1", "/items/2", "/items/3", "/ok", "/nope/1", "/nope/2", "/boom"):
            await client.get(path)

    def value(route: str, status: str) -> float | None:
        labels = {"method": "GET", "route": route, "status": status, "service": framework}
        return metrics.registry.get_sample_value("http_requests_total", labels)

    assert value("/items/{item_id}", "200") == 3.0
    assert value("/ok", "200") == 1.0
    assert value(UNMATCHED_ROUTE, "404") == 2.0
    assert value("/boom", "500") == 1.0
    routes = {s.labels["route"] for f in metrics.registry.collect() for s in f.samples if "route" in s.labels}
    assert routes == {"/items/{item_id}", "/ok", UNMATCHED_ROUTE, "/boom"}


def scrape_route(framework: str) -> ASGIApp:
    """The app wired as docs/metrics.md shows for ``framework``, serving /metrics."""
    metrics = register_metrics("docs")
    scrape = metrics_app(metrics.registry)
    if framework == "starlette":
        from starlette.routing import Route

        app = build_app(
            "starlette",
            middleware=[Middleware(MetricsMiddleware, metrics=metrics, exclude_paths=["/metrics"])],
        )
        app.router.routes.append(Route("/metrics", scrape))  # type: ignore[attr-defined]
        return app
    if framework == "fastapi":
        app = build_app("fastapi")
        app.add_middleware(MetricsMiddleware, metrics=metrics, exclude_paths=["/metrics"])  # type: ignore[attr-defined]
        app.add_route("/metrics", scrape)  # type: ignore[attr-defined]
        return app
    return MetricsMiddleware(
        build_app(framework), metrics=metrics, path="/metrics", exclude_paths=["/metrics"]
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_documented_wiring_serves_metrics(framework: str) -> None:
    """The wiring docs/metrics.md shows serves /metrics exactly and counts the routes, not /metrics."""
    transport = httpx.ASGITransport(app=scrape_route(framework))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/items/5")).status_code == 200
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'route="/items/{item_id}"' in response.text
    assert 'route="/metrics"' not in response.text
