"""Serve an ASGI app under a real uvicorn, hypercorn or granian on a free 127.0.0.1 port.

The server runs in a background thread of the test process with its own event loop, so
tests can inspect the app objects they built; it is stopped (and joined) on exit. Granian's
Rust HTTP core runs in-process through its embedded server (the same ASGI worker and lifespan
protocol as ``granian --interface asgi``); :func:`serve_process` runs the ``granian`` command
itself in a child process, stopped by its PID, for what only a separate process shows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from asgi_kit._asgi.types import ASGIApp

SERVERS = ("uvicorn", "hypercorn", "granian")


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


def wait_ready(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until ``url``/readyz answers 200 (a served demo), or fail if ``proc`` exits first."""
    import httpx

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"demo exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the demo did not become ready in time")


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
    elif server == "granian":
        with _serve_granian(app, port, lifespan, timeout) as served:
            yield served
    else:
        raise ValueError(f"unknown server {server!r}")


@contextmanager
def _serve_granian(app: ASGIApp, port: int, lifespan: str, timeout: float) -> Iterator[Served]:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    # "asgi" runs the app's lifespan (startup failure stops the server); "asginl" skips it.
    interface = Interfaces.ASGINL if lifespan == "off" else Interfaces.ASGI
    # The embedded server says it is experimental, once per start, at WARNING: not news here.
    logging.getLogger("_granian").setLevel(logging.ERROR)
    granian = Server(app, address="127.0.0.1", port=port, interface=interface, log_level=LogLevels.error)
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []
    threads_before = _os_threads()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(granian.serve())
        except BaseException as exc:  # surfaced by _wait_listening's timeout and re-raised below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"granian-{port}", daemon=True)
    thread.start()
    try:
        try:
            _wait_listening(port, time.monotonic() + timeout)
        except TimeoutError:
            if failure:
                raise failure[0] from None
            raise
        yield Served(f"http://127.0.0.1:{port}", port, "granian")
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(granian.stop)
        thread.join(timeout)
        # granian's Rust runtime threads outlive serve() briefly; an interpreter that exits
        # while they finish aborts the process ("panic in a function that cannot unwind").
        deadline = time.monotonic() + timeout
        while _os_threads() > threads_before and time.monotonic() < deadline:
            time.sleep(0.02)


def _os_threads() -> int:
    """Threads of this process, Python's and native ones (Linux); 0 where that is unknown."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


@contextmanager
def serve_process(
    target: str,
    *,
    interface: str = "asgi",
    env: Mapping[str, str] | None = None,
    timeout: float = 15.0,
) -> Iterator[Served]:
    """Run ``granian --interface asgi target`` in a child process until the block ends.

    ``target`` is ``module:attribute`` importable from the repository root. The process is
    stopped by its PID (SIGINT, then SIGKILL if it has not exited in ``timeout`` seconds).
    """
    port = free_port()
    command = [
        sys.executable, "-m", "granian", "--interface", interface, "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--log-level", "warning", target,
    ]  # fmt: skip
    child_env = {**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})}
    process = subprocess.Popen(command, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            _wait_listening(port, time.monotonic() + timeout)
        except TimeoutError:
            process.kill()
            _, err = process.communicate(timeout=timeout)
            raise TimeoutError(f"granian did not start: {err.decode(errors='replace')[-2000:]}") from None
        yield Served(f"http://127.0.0.1:{port}", port, "granian")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout)
        if process.stderr is not None:
            process.stderr.close()
