"""End to end: a request enters an app under uvicorn, the app calls an upstream through the kit's
clients, and the upstream sees the same request id and trace id as the incoming request."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asgi_kit._asgi.context import TraceIds, request_id_var, trace_ids_var
from asgi_kit._asgi.headers import scope_header
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.httpclient import HTTPClient, OpenAIClient
from asgi_kit.testing.fake_upstream import FakeOpenAI
from tests.harness.servers import Served, serve

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def gateway(upstream_url: str) -> ASGIApp:
    """A tiny gateway: sets the request/trace context as RequestID and tracing layers would, then calls upstream.

    The clients are opened at lifespan startup (one pool for all requests) and closed at shutdown.
    """
    clients: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    clients["http"] = await HTTPClient(base_url=upstream_url).__aenter__()
                    clients["openai"] = await OpenAIClient(upstream_url + "/v1", "sk-e2e").__aenter__()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await clients["http"].aclose()
                    await clients["openai"].aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        request_id = (scope_header(scope, b"x-request-id") or b"generated").decode()
        parent = (scope_header(scope, b"traceparent") or b"").decode()
        span_id = secrets.token_hex(8)
        trace = (
            TraceIds(TRACE_ID, span_id, f"00-{parent.split('-')[1]}-{span_id}-01", "kit=1")
            if parent
            else None
        )
        rid_token, trace_token = request_id_var.set(request_id), trace_ids_var.set(trace)
        try:
            if scope["path"] == "/models":
                await clients["http"].get("/v1/models", headers={"Authorization": "Bearer sk-e2e"})
            else:
                await clients["openai"].chat_completion(
                    model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
            body = json.dumps({"span_id": span_id}).encode()
        finally:
            trace_ids_var.reset(trace_token)
            request_id_var.reset(rid_token)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
def stack() -> Iterator[tuple[FakeOpenAI, Served]]:
    """The fake upstream and the gateway, each under its own uvicorn."""
    fake = FakeOpenAI()
    with serve(fake, "uvicorn") as upstream, serve(gateway(upstream.url), "uvicorn", lifespan="on") as front:
        yield fake, front


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/models", "/chat"])
async def test_upstream_sees_the_incoming_request_and_trace_ids(
    stack: tuple[FakeOpenAI, Served], path: str
) -> None:
    """The upstream receives the incoming X-Request-ID and a traceparent in the same trace, child of the app's span."""
    fake, front = stack
    async with httpx.AsyncClient(base_url=front.url) as client:
        response = await client.get(path, headers={"X-Request-ID": f"rid-{path}", "traceparent": INCOMING})
    assert response.status_code == 200
    span_id = response.json()["span_id"]
    seen = next(r for r in fake.requests if r.header("x-request-id") == f"rid-{path}")
    assert seen.header("traceparent") == f"00-{TRACE_ID}-{span_id}-01"
    assert seen.header("tracestate") == "kit=1"


@pytest.mark.integration
async def test_fake_upstream_survives_a_client_leaving_mid_stream() -> None:
    """A client that drops a slow stream does not crash the fake upstream."""
    fake = FakeOpenAI(token_delay=0.05, reply="a b c d e f g h")
    with serve(fake, "uvicorn") as upstream:
        async with OpenAIClient(upstream.url + "/v1", None) as api:
            stream = api.chat_completion_stream(
                model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
            first = await anext(stream)
            await stream.aclose()
            assert first.choices[0].delta.role == "assistant"
            assert (await api.list_models()).ids  # still serving
