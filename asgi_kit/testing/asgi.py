"""Raw-ASGI helpers: a scope factory, a recording ``send``, a ``receive`` that enforces what a
real server allows, and a runner that ties them together."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgi_kit._asgi.types import ASGIApp, Message, Scope


def make_scope(
    path: str = "/ok",
    *,
    method: str = "GET",
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    query_string: bytes = b"",
    type: str = "http",
    root_path: str = "",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    **extra: Any,
) -> Scope:
    """A fresh HTTP (or websocket) scope as a server would build it."""
    raw_headers = [
        (
            (k if isinstance(k, bytes) else k.lower().encode("latin-1")),
            (v if isinstance(v, bytes) else v.encode("latin-1")),
        )
        for k, v in headers
    ]
    scope: Scope = {
        "type": type,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "http" if type == "http" else "ws",
        "path": root_path + path,
        "raw_path": (root_path + path).encode("latin-1", "replace"),
        "root_path": root_path,
        "query_string": query_string,
        "headers": raw_headers,
        "client": client,
        "server": ("127.0.0.1", 8000),
        "state": {},
        **extra,
    }
    if type == "http":
        scope["method"] = method
    return scope


class ReceiveOverrun(AssertionError):
    """The app called ``receive`` after the server said there was nothing more to give."""


class StrictReceive:
    """Yields the body chunks, then blocks until ``disconnect()``; raises if called past that.

    A real server answers ``receive`` after the body with a wait for ``http.disconnect`` and
    after the disconnect never again; an app or layer that calls it more often is buggy.
    """

    def __init__(self, chunks: Sequence[bytes] = (b"",), *, disconnect_after_body: bool = False) -> None:
        self._messages: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        self._disconnected = asyncio.Event()
        if disconnect_after_body:
            self._disconnected.set()
        self.calls = 0
        self._disconnect_sent = False

    def disconnect(self) -> None:
        self._disconnected.set()

    async def __call__(self) -> Message:
        self.calls += 1
        if self._messages:
            return self._messages.pop(0)
        if self._disconnect_sent:
            raise ReceiveOverrun("receive() called after http.disconnect was delivered")
        await self._disconnected.wait()
        self._disconnect_sent = True
        return {"type": "http.disconnect"}


@dataclass
class RecordingSend:
    """Records every message; checks the HTTP response protocol as a server would."""

    messages: list[Message] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            assert not any(m["type"] == "http.response.start" for m in self.messages), (
                "second http.response.start"
            )
        if message["type"] == "http.response.body":
            assert any(m["type"] == "http.response.start" for m in self.messages), "body before start"
            assert not self.complete, "body after the response completed"
        self.messages.append(dict(message))
        self.event.set()

    @property
    def start(self) -> Message | None:
        for m in self.messages:
            if m["type"] == "http.response.start":
                return m
        return None

    @property
    def status(self) -> int | None:
        start = self.start
        return None if start is None else int(start["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        start = self.start
        return [] if start is None else [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    def header_values(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k == key]

    @property
    def body_chunks(self) -> list[bytes]:
        return [bytes(m.get("body", b"")) for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(self.body_chunks)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def complete(self) -> bool:
        bodies = [m for m in self.messages if m["type"] == "http.response.body"]
        return bool(bodies) and not bodies[-1].get("more_body", False)

    async def wait_for(self, predicate: Any, timeout: float = 2.0) -> None:
        async def _wait() -> None:
            while not predicate(self):
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(_wait(), timeout)


async def call_app(
    app: ASGIApp,
    scope: Scope | None = None,
    *,
    body: Sequence[bytes] = (b"",),
    **scope_kwargs: Any,
) -> RecordingSend:
    """Run one HTTP request through ``app`` and return what it sent."""
    scope = scope if scope is not None else make_scope(**scope_kwargs)
    send = RecordingSend()
    await app(scope, StrictReceive(body), send)
    return send


class LifespanProbe:
    """An inner app that answers the lifespan protocol and records that it saw it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        self.scope = scope
        while True:
            message = await receive()
            self.seen.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def run_lifespan(app: ASGIApp) -> list[Message]:
    """Drive startup and shutdown through ``app``; returns what it sent."""
    incoming: asyncio.Queue[Message] = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        incoming.put_nowait({"type": kind})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await asyncio.wait_for(app(scope, incoming.get, send), 5)
    return sent


__all__ = [
    "LifespanProbe",
    "ReceiveOverrun",
    "RecordingSend",
    "StrictReceive",
    "call_app",
    "make_scope",
    "run_lifespan",
]
