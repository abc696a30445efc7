"""Serve an ASGI app under a real uvicorn or hypercorn on a free 127.0.0.1 port.

The server runs in a background thread of the test process with its own event loop, so
tests can inspect the app objects they built; it is stopped (and joined) on exit.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from asgi_kit._asgi.types import ASGIApp

SERVERS = ("uvicorn", "hypercorn")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    server: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


def _wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"server on port {port} did not start")


@contextmanager
def serve(
    app: ASGIApp,
    server: str = "uvicorn",
    *,
    lifespan: str = "auto",
    timeout: float = 10.0,
    port: int | None = None,
) -> Iterator[Served]:
    """Run ``app`` under ``server`` until the block ends (on ``port``, or a free one)."""
    port = port or free_port()
    if server == "uvicorn":
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning", access_log=False
        )
        uv_server = uvicorn.Server(config)
        uv_server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        thread = threading.Thread(target=uv_server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        try:
            _wait_listening(port, time.monotonic() + timeout)
            yield Served(f"http://127.0.0.1:{port}", port, server)
        finally:
            uv_server.should_exit = True
            thread.join(timeout)
    elif server == "hypercorn":
        from hypercorn.asyncio import serve as hyper_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "WARNING"
        config.accesslog = None
        config.graceful_timeout = 1.0
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(hyper_serve(app, config, shutdown_trigger=stop.wait, mode="asgi"))  # type: ignore[arg-type]
            loop.close()

        thread = threading.Thread(target=run, name=f"hypercorn-{port}", daemon=True)
        thread.start()
        try:
            _wait_listening(port, time.monotonic() + timeout)
            yield Served(f"http://127.0.0.1:{port}", port, server)
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout)
    else:
        raise ValueError(f"unknown server {server!r}")
