"""The instrumented app the ``uvicorn --workers 2`` test serves (imported by each worker).

``GET /items/{n}`` answers with the worker's pid; ``/metrics`` is the multiprocess exposition
(``PROMETHEUS_MULTIPROC_DIR`` is set by the test before uvicorn starts).
"""

from __future__ import annotations

import os

from asgi_kit._asgi.lifespan import answer_lifespan
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.metrics import MetricsMiddleware, register_metrics


async def items(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["path"].startswith("/items/"):
        scope["asgi_kit.route"] = "/items/{n}"
        status, body = 200, str(os.getpid()).encode()
    else:
        status, body = 404, b"not found"
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


app = MetricsMiddleware(
    items, metrics=register_metrics("workers"), path="/metrics", exclude_paths=["/metrics"]
)
