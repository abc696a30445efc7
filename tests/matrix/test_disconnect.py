"""A client that hangs up, under every server: the layers see http.disconnect (or the cancel) alike."""

from __future__ import annotations

import io
import json
import socket
import uuid

import pytest

from asgi_kit.logging import LoggingMiddleware, new_logger
from tests.harness.apps import build_app
from tests.harness.servers import SERVERS, serve
from tests.logging.test_integration import RecordWaiter

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
def test_client_gone_mid_stream_is_499_on_every_server(framework: str, server: str) -> None:
    """A client closing a streamed response after the first event is logged as 499 on every server."""
    stream = io.StringIO()
    logger = new_logger(f"gone-{framework}-{server}-{uuid.uuid4().hex[:6]}", stream=stream)
    waiter = RecordWaiter()
    logger.handlers[0].addFilter(waiter)
    app = LoggingMiddleware(build_app(framework), logger=logger)
    with serve(app, server) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            while b"data:" not in received:  # the first event, then hang up
                chunk = sock.recv(4096)
                assert chunk, "the server closed before the first event"
                received += chunk
        waiter.wait_for(1)
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["status"] == 499 and "error" not in record
