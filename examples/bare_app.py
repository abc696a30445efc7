"""The kit's stack around a bare ASGI app: ``uvicorn examples.bare_app:app``."""

from __future__ import annotations

import json

from asgi_kit.auth import get_principal
from asgi_kit.errors import NOT_FOUND, ProblemError
from asgi_kit.types import Receive, Scope, Send
from examples.kit_stack import kit_stack, print_dev_token


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] != "/hello":
        raise ProblemError(NOT_FOUND)
    scope["asgi_kit.route"] = "/hello"  # the route template, for metrics and logs
    principal = get_principal(scope)
    body = json.dumps({"hello": principal.identity if principal else None}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


stack, jwt = kit_stack("bare-example")
app = stack.wrap(hello)
TOKEN = print_dev_token(jwt)
