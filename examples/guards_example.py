"""Edge guards around a bare ASGI app: a 504 for slow handlers, a 413 for big uploads, security headers.

Run it and try it::

    python examples/guards_example.py
    curl -i http://127.0.0.1:8000/ok                       # 200 with the security headers
    curl -i http://127.0.0.1:8000/slow                     # 504 problem after 1 s
    head -c 2000000 /dev/zero | curl -i -T - http://127.0.0.1:8000/upload   # 413 problem (chunked)
"""

from __future__ import annotations

import asyncio
import json

from asgi_kit import Stack
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import BodyLimitMiddleware, SecurityHeadersMiddleware, TimeoutMiddleware
from asgi_kit.types import ASGIApp, Receive, Scope, Send


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan and websockets: nothing to do in this example
    if scope["path"] == "/slow":
        await asyncio.sleep(60)  # far longer than the 1 s timeout: cancelled, answered 504
    received = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"ok": True, "received": received}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def build_app(app: ASGIApp = inner_app) -> ASGIApp:
    """The guards in the recommended order (see docs/stack.md), outermost first."""
    stack = (
        Stack()
        .use(ProblemDetailsMiddleware)
        .use(SecurityHeadersMiddleware, content_security_policy="default-src 'none'; frame-ancestors 'none'")
        .use(TimeoutMiddleware, timeout=1.0, exclude_paths=["/upload"])
        .use(BodyLimitMiddleware, max_body_size=1024 * 1024)
    )
    return stack.wrap(app)


app = build_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000, lifespan="off")
