"""A small app and a two-layer stack for ``asgi-kit bench`` tests (``tests.bench.layered_app:app``)."""

from __future__ import annotations

from asgi_kit import Stack
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.guards import SecurityHeadersMiddleware
from asgi_kit.logging import RequestIDMiddleware


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request 200, echoing the body's length; speaks the lifespan protocol."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    received = 0
    while True:
        message = await receive()
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = f'{{"method":"{scope["method"]}","received":{received}}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """An app whose lifespan startup fails."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await app(scope, receive, send)


stack = Stack().use(RequestIDMiddleware).use(SecurityHeadersMiddleware)
empty = Stack()
