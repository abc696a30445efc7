"""Tracing a bare ASGI app: one server span per request, printed as JSON on stdout.

Run it and try it::

    python examples/tracing_example.py
    curl -i http://127.0.0.1:8000/items/7          # span "GET /items/{item_id}"
    curl -i http://127.0.0.1:8000/items/7 \\
      -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'   # continues that trace
    curl -i http://127.0.0.1:8000/nope             # span "GET" (unmatched: never the raw path)

Set ``OTLP_ENDPOINT=http://127.0.0.1:4318`` to send the spans to a collector instead.
"""

from __future__ import annotations

import json
import os

import uvicorn

from asgi_kit.tracing import TracingMiddleware, get_trace_ids, init_tracer
from asgi_kit.types import Receive, Scope, Send

endpoint = os.environ.get("OTLP_ENDPOINT")
provider = init_tracer(
    "tracing-example",
    exporter="otlp" if endpoint else "console",
    endpoint=endpoint,
    schedule_delay=1.0,
)


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                provider.shutdown()  # bounded: flushes the last spans, never hangs the exit
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    parts = scope["path"].strip("/").split("/")
    payload: dict[str, object]
    if len(parts) == 2 and parts[0] == "items" and parts[1].isdigit():
        scope["asgi_kit.route"] = "/items/{item_id}"  # the template names the span
        status, payload = 200, {"item_id": int(parts[1])}
    else:
        status, payload = 404, {"detail": "Not Found"}
    ids = get_trace_ids()  # the ids every log record and outbound call of this request carry
    payload["trace_id"] = ids.trace_id if ids else None
    body = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


app = TracingMiddleware(inner_app, tracer_provider=provider, exclude_paths=["/health"])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8000)
