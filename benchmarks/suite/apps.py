"""The apps the end-to-end comparison serves with uvicorn, selected by an environment variable.

:func:`create_app` is the factory :mod:`benchmarks.suite.e2e` has each server build, with
``ASGI_KIT_BENCH_APP`` set to:

- ``bare``: the bare FastAPI app (one async route ``GET /items/{item_id}``);
- ``kit``: the same FastAPI app wrapped in the full kit stack (request id, tracing sampling
  every request, access log, metrics, problem details, JWT auth, RBAC), built as
  ``Stack.from_settings`` builds it with tracing enabled: the tracer provider comes from
  :func:`asgi_kit.tracing.init_tracer` (batch processor, here a no-op exporter) and a
  ``LifespanHooksMiddleware`` outermost shuts it down at lifespan shutdown, so
  the kit freezes the startup heap by itself (its ``freeze_heap`` default);
- ``peer``: the typical FastAPI peer stack with the same features (the OpenTelemetry SDK's
  own ``BatchSpanProcessor`` defaults, as its users get them).

The layers are the in-process variants ``bare.fastapi``, ``kit.stack.fastapi.cached`` and
``peer.stack.cached``, built by the same factories. Tokens are verified with the suite's
fixed development secret; log lines are formatted and discarded.

The servers' GC modes and diagnostics are the kit's (:mod:`asgi_kit.bench.serving`): in the
``default`` mode only what the app itself does happens (the kit app freezes through its
lifespan layer, bare FastAPI and the peer stack do not).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Sequence
from typing import Any, Final

from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit._asgi.types import ASGIApp
from benchmarks.suite._apps import load
from benchmarks.suite.variants import BenchContext, get_variants

APP_ENV: Final = "ASGI_KIT_BENCH_APP"
E2E_APPS: Final = {"bare": "bare.fastapi", "kit": "kit.stack.fastapi.cached", "peer": "peer.stack.cached"}


class _KitContext(BenchContext):
    """The bench context, with the tracer provider a kit user gets from ``init_tracer``."""

    def tracer_provider(self) -> Any:
        if self._provider is None:
            (init_tracer,) = load("asgi_kit.tracing", "init_tracer")
            exporter_base, result = load("opentelemetry.sdk.trace.export", "SpanExporter", "SpanExportResult")

            class NoopExporter(exporter_base):  # type: ignore[misc,valid-type]
                def export(self, spans: Sequence[Any]) -> Any:
                    return result.SUCCESS

            self._provider = init_tracer("asgi-kit-bench", exporter=NoopExporter(), sample_ratio=1.0)
        return self._provider


def create_app() -> ASGIApp:
    """Build the app named by ``ASGI_KIT_BENCH_APP`` (``bare`` when unset)."""
    name = os.environ.get(APP_ENV, "bare")
    if name not in E2E_APPS:
        raise ValueError(f"{APP_ENV} must be one of {', '.join(E2E_APPS)}, got {name!r}")
    (variant,) = get_variants([E2E_APPS[name]])
    # The context (tracer provider, log sink) lives as long as the server process.
    context = _KitContext() if name == "kit" else BenchContext()
    app = variant.build(context)
    if isinstance(app, Awaitable):  # E2E_APPS holds sync-built variants; this guards a future edit
        if inspect.iscoroutine(app):
            app.close()
        raise TypeError(f"{variant.name} needs an event loop to build; the e2e apps are built without one")
    if name == "kit":

        async def shutdown_tracer() -> None:
            context.close()

        app = LifespanHooksMiddleware(app, on_shutdown=[shutdown_tracer])
    return app


__all__ = ["APP_ENV", "E2E_APPS", "create_app"]
