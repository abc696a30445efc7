"""Scripted upstreams on loopback: real aiohttp.web servers whose answers each test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from multidict import CIMultiDict

from tests.harness.servers import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


def reply(status: int = 200, body: bytes | str = b"ok", headers: dict[str, str] | None = None) -> Handler:
    """A handler answering with a fixed status, body and headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, headers=headers)

    return handler


def hang(started: asyncio.Event | None = None) -> Handler:
    """A handler that accepts the request and never answers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if started is not None:
            started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return handler


@dataclass
class ScriptedServer:
    """An aiohttp.web server; each path answers with its scripted handlers in order (last one repeats)."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    scripts: dict[str, list[Handler]] = field(default_factory=dict)
    active: int = 0

    def script(self, path: str, *handlers: Handler) -> None:
        self.scripts[path] = list(handlers)

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(request.method, request.path, CIMultiDict(request.headers), await request.read())
        )
        handlers = self.scripts.get(request.path)
        if not handlers:
            return web.Response(status=404, text="not scripted")
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        self.active += 1
        try:
            return await handler(request)
        finally:
            self.active -= 1


async def _start(server: ScriptedServer) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.dispatch)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server.url = f"http://127.0.0.1:{port}"
    return runner


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedServer]:
    """A scripted upstream on a free loopback port."""
    server = ScriptedServer()
    runner = await _start(server)
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def other_upstream() -> AsyncIterator[ScriptedServer]:
    """A second scripted upstream (another origin: another port)."""
    server = ScriptedServer()
    runner = await _start(server)
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"
