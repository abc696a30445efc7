"""Prometheus metrics for a bare ASGI app, served with its own ``/metrics``.

Run it and try it::

    python examples/metrics_example.py
    curl http://127.0.0.1:8000/items/7          # counted as route="/items/{item_id}"
    curl http://127.0.0.1:8000/nope             # counted as route="<unmatched>", status="404"
    curl http://127.0.0.1:8000/metrics          # the text format
    curl -H 'Accept: application/openmetrics-text' http://127.0.0.1:8000/metrics

For several workers, start it with ``WORKERS=2`` (``PROMETHEUS_MULTIPROC_DIR`` is set to a
fresh temporary directory before prometheus-client is imported).
"""

from __future__ import annotations

import json
import os
import tempfile

if int(os.environ.get("WORKERS", "1")) > 1:
    # before anything imports prometheus_client: it picks its storage at import
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="asgi-kit-metrics-"))

import uvicorn

from asgi_kit import answer_lifespan
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.types import Receive, Scope, Send


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    parts = scope["path"].strip("/").split("/")
    payload: dict[str, object]
    if len(parts) == 2 and parts[0] == "items" and parts[1].isdigit():
        scope["asgi_kit.route"] = "/items/{item_id}"  # what a router would write: the label
        status, payload = 200, {"item_id": int(parts[1])}
    else:
        status, payload = 404, {"detail": "Not Found"}
    body = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


app = MetricsMiddleware(
    inner_app,
    metrics=register_metrics("metrics-example"),
    path="/metrics",  # the layer answers the scrape itself...
    exclude_paths=["/metrics"],  # ...and does not count it
)

if __name__ == "__main__":
    workers = int(os.environ.get("WORKERS", "1"))
    target = "metrics_example:app" if workers > 1 else app
    uvicorn.run(target, host="127.0.0.1", port=8000, workers=workers, app_dir=os.path.dirname(__file__))
