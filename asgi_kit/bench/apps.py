"""The apps the end-to-end benchmark serves with uvicorn, selected by an environment variable.

``uvicorn --factory asgi_kit.bench.apps:create_app`` with ``ASGI_KIT_BENCH_APP`` set to:

- ``bare``: the bare FastAPI app (one async route ``GET /items/{item_id}``);
- ``kit``: the same FastAPI app wrapped in the full kit stack (request id, access log,
  metrics, tracing sampling every request into a batch processor and a no-op exporter,
  problem details, JWT auth, RBAC);
- ``peer``: the typical FastAPI peer stack with the same features.

They are the in-process variants ``bare.fastapi``, ``kit.stack.fastapi.cached`` and
``peer.stack.cached``, built by the same factories. Tokens are verified with the suite's
fixed development secret; log lines are formatted and discarded.

With ``ASGI_KIT_BENCH_GC_FREEZE=1`` (what the e2e runner sets, for every app alike) the heap
built at startup is moved to the collector's permanent generation (``gc.freeze()``), as a
long-running CPython service should do: spans waiting in a batch processor live long enough to
be promoted, and the full collections they then trigger would otherwise walk every object the
imports and the app created (measured: the kit stack's p99 20 ms with, 11 ms without those
pauses; bare FastAPI 6 ms either way).
"""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Awaitable
from typing import Final

from asgi_kit._asgi.types import ASGIApp
from asgi_kit.bench.variants import BenchContext, get_variants

APP_ENV: Final = "ASGI_KIT_BENCH_APP"
FREEZE_ENV: Final = "ASGI_KIT_BENCH_GC_FREEZE"
E2E_APPS: Final = {"bare": "bare.fastapi", "kit": "kit.stack.fastapi.cached", "peer": "peer.stack.cached"}


def create_app() -> ASGIApp:
    """Build the app named by ``ASGI_KIT_BENCH_APP`` (``bare`` when unset)."""
    name = os.environ.get(APP_ENV, "bare")
    if name not in E2E_APPS:
        raise ValueError(f"{APP_ENV} must be one of {', '.join(E2E_APPS)}, got {name!r}")
    (variant,) = get_variants([E2E_APPS[name]])
    # The context (tracer provider, log sink) lives as long as the server process.
    app = variant.build(BenchContext())
    if isinstance(app, Awaitable):  # E2E_APPS holds sync-built variants; this guards a future edit
        if inspect.iscoroutine(app):
            app.close()
        raise TypeError(f"{variant.name} needs an event loop to build; the e2e apps are built without one")
    if os.environ.get(FREEZE_ENV) == "1":
        gc.collect()
        gc.freeze()
    return app


__all__ = ["APP_ENV", "E2E_APPS", "FREEZE_ENV", "create_app"]
