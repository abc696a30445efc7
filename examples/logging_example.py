"""Request ids and JSON access logs for a bare ASGI app.

Run it and try it::

    python examples/logging_example.py
    curl -i http://127.0.0.1:8000/orders/7                       # X-Request-ID in the answer
    curl -i -H 'X-Request-ID: my-id-1' http://127.0.0.1:8000/orders/7   # your id, echoed and logged
    curl -i 'http://127.0.0.1:8000/orders/7?token=abc&page=2'     # logged as query "token=***&page=2"
    curl -i http://127.0.0.1:8000/boom                           # a 500 problem with the request id
    curl -i http://127.0.0.1:8000/healthz                        # never logged

Each request writes JSON lines to stderr: the handler's own record and the access record, both
with the same ``request_id``. DSN passwords in the error are masked.
"""

from __future__ import annotations

import json
import logging

import uvicorn

from asgi_kit import Stack
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, get_request_id, new_logger
from asgi_kit.types import Receive, Scope, Send

# The root logger: the kit's own asgi_kit.* records (the 500 below) are JSON lines too.
log = new_logger("orders", logger_name="", environment="example")
handler_log = logging.getLogger("orders.handlers")


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan and websockets: nothing to do in this example
    path: str = scope["path"]
    if path == "/boom":
        scope["asgi_kit.route"] = "/boom"
        raise ConnectionError("could not reach postgresql://orders:hunter2@db/orders")
    if path == "/healthz":
        body = b"ok"
    elif path.startswith("/orders/") and path.count("/") == 2:
        scope["asgi_kit.route"] = "/orders/{order_id}"  # a bare app names its own route template
        order_id = path.rsplit("/", 1)[1]
        handler_log.info("looking up order", extra={"order_id": order_id})
        body = json.dumps({"order_id": order_id, "request_id": get_request_id()}).encode()
    else:
        body = b'{"detail": "Not Found"}'
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


app = (
    Stack()
    .use(RequestIDMiddleware)
    .use(LoggingMiddleware, logger=logging.getLogger("orders.access"), exclude_paths=["/healthz"])
    .use(ProblemDetailsMiddleware, reraise=False)
    .wrap(inner_app)
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8000, access_log=False, log_config=None)
