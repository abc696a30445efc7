"""The full stack over real HTTP: {bare ASGI, Starlette, FastAPI, Litestar} x {uvicorn, hypercorn, granian}.

One composed stack (request id, tracing, access log, metrics, problem details, security headers,
JWT auth, RBAC) around the same small app under every framework and server: the behaviour a
client sees must be the same everywhere.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
import time
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
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asgi_kit import Stack
from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import SecurityHeadersMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.rbac import Permission, RequirePermission
from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import (
    APP_CONTEXT,
    APP_CONTEXT_VALUE,
    BACKGROUND_DONE,
    FRAMEWORKS,
    SSE_PAUSE,
    build_app,
)
from tests.harness.servers import SERVERS, Served, serve

pytestmark = pytest.mark.integration

SECRET = "matrix-test-secret-" + "x" * 32


def _handlers(framework: str) -> dict[Any, Any]:
    if framework == "starlette":
        from asgi_kit.integrations.starlette import problem_exception_handlers
    elif framework == "fastapi":
        from asgi_kit.integrations.fastapi import problem_exception_handlers
    else:
        from asgi_kit.integrations.litestar import problem_exception_handlers
    return problem_exception_handlers()


class AppContextFilter(logging.Filter):
    """Copies the app's contextvar onto every record, to see it in the kit's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.app_context = APP_CONTEXT.get()
        return True


@dataclass
class Rig:
    served: Served
    framework: str
    log: io.StringIO
    spans: InMemorySpanExporter
    metrics: Any
    admin: str
    user: str

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]

    async def access_lines(self, request_id: str) -> list[dict[str, Any]]:
        """The access-log records of one request; the line is written just after the response ends."""
        for _ in range(100):
            lines = [r for r in self.records() if r.get("request_id") == request_id and "status" in r]
            if lines:
                await asyncio.sleep(0.05)  # a second line, if one were wrongly written, would show now
                return [r for r in self.records() if r.get("request_id") == request_id and "status" in r]
            await asyncio.sleep(0.02)
        return []


@pytest.fixture(params=[(f, s) for s in SERVERS for f in FRAMEWORKS], ids=lambda p: f"{p[0]}-{p[1]}")
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    framework, server = request.param
    log = io.StringIO()
    logger = new_logger(f"matrix-{framework}-{server}-{uuid.uuid4().hex[:6]}", stream=log)
    for handler in logger.handlers:
        handler.addFilter(AppContextFilter())
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = register_metrics("matrix")
    jwt = JWTManager(JWTConfig(secret=SECRET, issuer="https://issuer.test", audience="matrix"))
    admin = jwt.generate_token_pair("admin-1", "org-1", "org_admin").access_token
    user = jwt.generate_token_pair("user-1", "org-1", "org_user").access_token
    inner = (
        build_app(framework)
        if framework == "bare"
        else build_app(framework, exception_handlers=_handlers(framework))
    )
    app = (
        Stack()
        .use(RequestIDMiddleware)
        .use(TracingMiddleware, tracer_provider=provider)
        .use(LoggingMiddleware, logger=logger)
        .use(MetricsMiddleware, metrics=metrics)
        .use(ProblemDetailsMiddleware, reraise=False)
        .use(SecurityHeadersMiddleware)
        .use(AuthMiddleware, jwt=jwt)
        .use(RequirePermission, Permission.MANAGE_ORG_USERS)
        .wrap(inner)
    )
    with serve(app, server, lifespan="on") as served:
        yield Rig(served, framework, log, spans, metrics, admin, user)
    provider.shutdown()


async def eventually(check: Any, timeout: float = 3.0) -> Any:
    """Layers record after the response is sent; poll briefly instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.02)


def _template(name: str) -> str:
    return re.sub(r":[a-z]+}", "}", name)  # Starlette and Litestar keep the converter: "{item_id:int}"


async def test_full_stack_behaves_the_same(rig: Rig) -> None:
    """Request id, access log, metrics, span, auth, problems, SSE, background, contextvars and websockets."""
    admin = {"Authorization": f"Bearer {rig.admin}"}
    async with httpx.AsyncClient(base_url=rig.served.url, timeout=10) as client:
        # auth: 401 without credentials (RFC 6750 challenge), 403 without the permission, 200 with it
        anonymous = await client.get("/ok")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert "error=" not in anonymous.headers["www-authenticate"]
        forbidden = await client.get("/ok", headers={"Authorization": f"Bearer {rig.user}"})
        assert forbidden.status_code == 403
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
        ok = await client.get("/ok", headers=admin)
        assert ok.status_code == 200 and ok.json()["user"] == "admin-1"
        request_id = ok.headers["x-request-id"]
        assert ok.headers["x-content-type-options"] == "nosniff"

        # one access-log line for that request, carrying the app's contextvar
        lines = await rig.access_lines(request_id)
        assert len(lines) == 1
        assert lines[0]["status"] == 200 and lines[0]["route"] == "/ok"
        assert lines[0]["app_context"] == APP_CONTEXT_VALUE

        # metrics and span named after the route template, never the raw path
        item = await client.get("/items/42", headers=admin)
        assert item.status_code == 200
        pattern = re.compile(r'http_requests_total\{[^}]*route="/items/\{item_id(:int)?\}"')
        assert await eventually(lambda: pattern.search(generate_latest(rig.metrics.registry).decode()))
        assert "/items/42" not in generate_latest(rig.metrics.registry).decode()
        assert await eventually(
            lambda: (
                "GET /items/{item_id}" in {_template(span.name) for span in rig.spans.get_finished_spans()}
            )
        )

        # the same problem+json shape for a 404, a validation error and an unhandled exception
        # (Litestar's validation errors are 400 by design, the others' 422)
        for path, statuses in (("/nope", {404}), ("/items/abc", {400, 422}), ("/boom", {500})):
            response = await client.get(path, headers=admin)
            assert response.status_code in statuses, (path, response.text)
            status = response.status_code
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert {"type", "title", "status", "request_id"} <= set(body)
            assert body["status"] == status
            assert body["request_id"] == response.headers["x-request-id"]
            assert "s3cr3t" not in response.text and "Traceback" not in response.text

        # server-sent events are streamed: the first event arrives before the handler finishes
        began = time.perf_counter()
        first_at = None
        async with client.stream("GET", "/stream", headers=admin) as stream:
            async for chunk in stream.aiter_bytes():
                if first_at is None and b"data:" in chunk:
                    first_at = time.perf_counter() - began
        total = time.perf_counter() - began
        assert first_at is not None and first_at < total - SSE_PAUSE / 2

        # background tasks run after the response
        key = f"{rig.framework}-{rig.served.server}-{uuid.uuid4().hex[:6]}"
        done = await client.get("/background", params={"id": key}, headers=admin)
        assert done.status_code == 200
        event = BACKGROUND_DONE.setdefault(key, threading.Event())
        assert not event.is_set()
        assert event.wait(5)

    # websockets pass through, authenticated at the handshake
    async with ws_connect(f"{rig.served.ws_url}/ws", additional_headers=admin, open_timeout=5) as socket:
        await socket.send("hello")
        assert await socket.recv() == "hello"
    with pytest.raises((InvalidStatus, ConnectionClosed)):  # denial response, or close 1008 before accept
        async with ws_connect(f"{rig.served.ws_url}/ws", open_timeout=5) as socket:
            await socket.send("hello")
            await socket.recv()
