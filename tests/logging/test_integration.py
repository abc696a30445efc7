"""Under a real uvicorn, each framework: the app's own log records and the access log carry the id."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
import pytest

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, get_request_id
from tests.harness.apps import FRAMEWORKS, build_app
from tests.harness.servers import serve
from tests.logging.helpers import json_logger, records

pytestmark = pytest.mark.integration


class RecordWaiter(logging.Filter):
    """Lets a test wait (without sleeping) until the server thread has written N records."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.condition = threading.Condition()

    def filter(self, record: logging.LogRecord) -> bool:
        with self.condition:
            self.count += 1
            self.condition.notify_all()
        return True

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.condition:
            assert self.condition.wait_for(lambda: self.count >= count, timeout), (
                f"{self.count} < {count} records"
            )


def with_logging_route(framework: str, app: ASGIApp, logger_name: str) -> ASGIApp:
    """Add GET /log, a handler (sync, so run in a worker thread where the framework does that) that logs."""

    def handler_body() -> str:
        logging.getLogger(logger_name).info("handled", extra={"seen_request_id": get_request_id()})
        return "logged"

    if framework == "bare":

        async def bare(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/log":
                body = handler_body().encode()
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return bare
    if framework == "starlette":
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        def endpoint(request: Request) -> PlainTextResponse:
            return PlainTextResponse(handler_body())

        app.router.routes.append(Route("/log", endpoint))  # type: ignore[attr-defined]
        return app
    if framework == "fastapi":

        def fastapi_endpoint() -> str:
            return handler_body()

        app.add_api_route("/log", fastapi_endpoint)  # type: ignore[attr-defined]
        return app
    from litestar import get

    @get("/log", sync_to_thread=True)
    def litestar_endpoint() -> str:
        return handler_body()

    app.register(litestar_endpoint)  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_app_records_and_access_log_carry_the_request_id(framework: str) -> None:
    """The handler's own record and the access record both carry the request id the client sent."""
    with json_logger() as (logger, stream):
        waiter = RecordWaiter()
        logger.handlers[0].addFilter(waiter)
        inner = with_logging_route(framework, build_app(framework), f"{logger.name}.app")
        app = RequestIDMiddleware(LoggingMiddleware(ProblemDetailsMiddleware(inner), logger=logger))
        with serve(app, "uvicorn") as served, httpx.Client(base_url=served.url, timeout=10) as client:
            logged = client.get("/log", headers={"X-Request-ID": f"rid-{framework}"})
            waiter.wait_for(2)
            item = client.get("/items/5?token=SECRETTOKEN", headers={"User-Agent": "itest"})
            waiter.wait_for(3)
            boom = client.get("/boom", headers={"X-Request-ID": f"boom-{framework}"})
            waiter.wait_for(4)
    assert logged.status_code == 200 and logged.headers["x-request-id"] == f"rid-{framework}"
    lines = records(stream)
    handled = next(r for r in lines if r["message"] == "handled")
    assert handled["request_id"] == handled["seen_request_id"] == f"rid-{framework}"
    access = [r for r in lines if r["message"] == "request"]
    assert access[0]["request_id"] == f"rid-{framework}" and access[0]["status"] == 200

    assert item.status_code == 200
    assert access[1]["route"].startswith("/items/{item_id")
    assert access[1]["query"] == "token=REDACTED" and access[1]["user_agent"] == "itest"
    assert access[1]["request_id"] == item.headers["x-request-id"]

    # The framework's or the kit's 500: the id is echoed and the access record says 500.
    assert boom.status_code == 500 and boom.headers["x-request-id"] == f"boom-{framework}"
    assert access[2]["status"] == 500 and access[2]["request_id"] == f"boom-{framework}"
    assert "SECRETTOKEN" not in stream.getvalue() and "s3cr3t" not in stream.getvalue()


def test_websocket_handshake_echoes_the_request_id() -> None:
    """Under uvicorn, a websocket handshake response carries the request id header."""
    import asyncio

    import websockets

    async def talk(url: str) -> Any:
        async with websockets.connect(url + "/ws", additional_headers={"X-Request-ID": "ws-rid"}) as ws:
            await ws.send("ping")
            reply = await ws.recv()
            assert ws.response is not None
            return reply, ws.response.headers.get("x-request-id")

    with serve(RequestIDMiddleware(build_app("bare")), "uvicorn") as served:
        reply, header = asyncio.run(asyncio.wait_for(talk(served.ws_url), 10))
    assert (reply, header) == ("ping", "ws-rid")


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
def test_client_gone_mid_stream_is_499(framework: str) -> None:
    """A client closing a streamed response early is logged as 499 (the framework saw http.disconnect)."""
    with json_logger() as (logger, stream):
        waiter = RecordWaiter()
        logger.handlers[0].addFilter(waiter)
        with serve(LoggingMiddleware(build_app(framework), logger=logger), "uvicorn") as served:
            with (
                httpx.Client(base_url=served.url, timeout=10) as client,
                client.stream("GET", "/stream") as response,
            ):
                next(response.iter_raw())  # the first event, then hang up
            waiter.wait_for(1)
    (record,) = records(stream)
    assert record["status"] == 499 and "error" not in record
    assert 0 < record["bytes_sent"] < 48
