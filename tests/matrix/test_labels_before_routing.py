"""Labels before routing, over real HTTP: {Starlette, FastAPI, Litestar} x every server.

A 401 from auth and a 429 from a budget are answered before any router ran; the metrics
label, the span name and the access-log line still carry the route template the router would
have matched, and a path no route matches is still ``<unmatched>``.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from asgi_kit import Stack
from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager
from asgi_kit.budget import BudgetMiddleware, InMemoryBudgetStore
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.models import Usage
from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import build_app
from tests.harness.servers import SERVERS, Served, serve
from tests.matrix.test_framework_matrix import eventually

pytestmark = pytest.mark.integration

SECRET = "labels-test-secret-" + "x" * 32
ROUTED_FRAMEWORKS = ("starlette", "fastapi", "litestar")


@dataclass
class Rig:
    served: Served
    log: io.StringIO
    spans: InMemorySpanExporter
    metrics: Any
    broke: str
    rich: str

    def access_line(self, request_id: str) -> dict[str, Any] | None:
        for line in self.log.getvalue().splitlines():
            record = json.loads(line)
            if record.get("request_id") == request_id and "status" in record:
                return dict(record)
        return None

    def counted(self, route: str, status: int) -> bool:
        text = generate_latest(self.metrics.registry).decode()
        pattern = (
            rf'http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*status="{status}"[^}}]*\}} 1\.0'
        )
        return re.search(pattern, text) is not None

    def span_names(self) -> set[str]:
        return {span.name for span in self.spans.get_finished_spans()}


@pytest.fixture(params=[(f, s) for s in SERVERS for f in ROUTED_FRAMEWORKS], ids=lambda p: f"{p[0]}-{p[1]}")
async def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    framework, server = request.param
    log = io.StringIO()
    logger = new_logger(f"labels-{framework}-{server}-{uuid.uuid4().hex[:6]}", stream=log)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = register_metrics("labels")
    jwt = JWTManager(JWTConfig(secret=SECRET, issuer="https://issuer.test", audience="labels"))
    store = InMemoryBudgetStore([("broke", 10), ("rich", 1_000)])
    await store.record_usage(Usage(org_id="broke", model="m", prompt_tokens=10))
    app = (
        Stack()
        .use(RequestIDMiddleware)
        .use(TracingMiddleware, tracer_provider=provider)
        .use(LoggingMiddleware, logger=logger)
        .use(MetricsMiddleware, metrics=metrics)
        .use(ProblemDetailsMiddleware, reraise=False)
        .use(AuthMiddleware, jwt=jwt)
        .use(BudgetMiddleware, store=store)
        .wrap(build_app(framework))
    )
    broke = jwt.generate_token_pair("u-1", "broke", "org_user").access_token
    rich = jwt.generate_token_pair("u-2", "rich", "org_user").access_token
    with serve(app, server, lifespan="on") as served:
        yield Rig(served, log, spans, metrics, broke, rich)
    provider.shutdown()


def _template(name: str) -> str:
    return re.sub(r":[a-z]+}", "}", name)  # Starlette keeps the converter: "{item_id:int}"


async def test_rejections_before_routing_carry_the_route(rig: Rig) -> None:
    """A 401 and a 429 before routing are labelled with the template in metrics, span and log."""
    async with httpx.AsyncClient(base_url=rig.served.url, timeout=10) as client:
        denied = await client.get("/items/42")
        over = await client.get("/items/42", headers={"Authorization": f"Bearer {rig.broke}"})
        unknown = await client.get("/nope/42")
        served = await client.get("/items/7", headers={"Authorization": f"Bearer {rig.rich}"})
    assert (denied.status_code, over.status_code, unknown.status_code, served.status_code) == (
        401,
        429,
        401,
        200,
    )

    for response, status in ((denied, 401), (over, 429)):
        line = await eventually(lambda r=response: rig.access_line(r.headers["x-request-id"]))
        assert line is not None and line["status"] == status
        assert _template(line["route"]) == "/items/{item_id}"
    unknown_line = await eventually(lambda: rig.access_line(unknown.headers["x-request-id"]))
    assert unknown_line is not None and unknown_line["route"] == "<unmatched>"

    assert await eventually(lambda: {"GET /items/{item_id}"} <= {_template(n) for n in rig.span_names()})
    assert await eventually(lambda: len(rig.spans.get_finished_spans()) == 4)
    names = sorted(_template(span.name) for span in rig.spans.get_finished_spans())
    assert names == ["GET", "GET /items/{item_id}", "GET /items/{item_id}", "GET /items/{item_id}"]

    route = next(_template(n) for n in rig.span_names() if n != "GET").removeprefix("GET ")
    raw = next(n for n in rig.span_names() if n != "GET").removeprefix("GET ")
    assert route == "/items/{item_id}"
    assert await eventually(lambda: rig.counted(raw, 401) and rig.counted(raw, 429) and rig.counted(raw, 200))
    assert rig.counted("<unmatched>", 401)
    assert "/items/42" not in generate_latest(rig.metrics.registry).decode()
