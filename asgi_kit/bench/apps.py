"""The apps the end-to-end benchmark serves with uvicorn, selected by environment variables.

``uvicorn --factory asgi_kit.bench.apps:create_app`` with ``ASGI_KIT_BENCH_APP`` set to:

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

``ASGI_KIT_BENCH_GC_FREEZE=1`` (the e2e runner's ``freeze`` mode) also collects and
``gc.freeze()``s the startup heap in every app alike, as a hand-tuned service would; with
``0`` (the ``default`` mode) only what the app itself does happens: the kit app freezes
through its lifespan layer, bare FastAPI and the peer stack do not.

``ASGI_KIT_BENCH_DIAGNOSTICS=<file>`` (opt-in, the runner's ``--e2e-diagnostics``) records
every garbage collection from the first request on through ``gc.callbacks`` (count, total
and longest pause per generation, a histogram of pauses) and, when the lifespan shuts down, the CPU time of each
thread of the process (the batch processor's export thread among them); the figures are
written as JSON to ``<file>.<pid>``.
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Final

from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.bench._apps import load
from asgi_kit.bench.variants import BenchContext, get_variants

APP_ENV: Final = "ASGI_KIT_BENCH_APP"
FREEZE_ENV: Final = "ASGI_KIT_BENCH_GC_FREEZE"
DIAGNOSTICS_ENV: Final = "ASGI_KIT_BENCH_DIAGNOSTICS"
E2E_APPS: Final = {"bare": "bare.fastapi", "kit": "kit.stack.fastapi.cached", "peer": "peer.stack.cached"}
#: Upper bounds (ms) of the GC pause histogram's buckets; the last bucket is open.
PAUSE_BUCKETS_MS: Final = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


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
    diagnostics = os.environ.get(DIAGNOSTICS_ENV)
    if diagnostics:
        app = Diagnostics(app, f"{diagnostics}.{os.getpid()}")
    if os.environ.get(FREEZE_ENV) == "1":
        gc.collect()
        gc.freeze()
    return app


class GcPauses:
    """Times every collection through ``gc.callbacks``: count, total, longest, histogram per generation."""

    def __init__(self) -> None:
        self._began = 0.0
        #: collections are counted only once this is set (the startup collections are not load)
        self.recording = False
        self.stats = {
            generation: {
                "count": 0,
                "total_ms": 0.0,
                "max_ms": 0.0,
                "hist": [0] * (len(PAUSE_BUCKETS_MS) + 1),
            }
            for generation in (0, 1, 2)
        }

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.recording:
            return
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = (time.perf_counter() - self._began) * 1000
        entry: Any = self.stats[info["generation"]]
        entry["count"] += 1
        entry["total_ms"] += pause
        entry["max_ms"] = max(entry["max_ms"], pause)
        entry["hist"][sum(1 for bound in PAUSE_BUCKETS_MS if pause > bound)] += 1

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of each live Python thread, by name, from ``/proc/self/task/<tid>/schedstat``.

    The scheduler's own count (nanoseconds on a CPU) rather than ``stat``'s clock ticks: a
    thread that runs for a few milliseconds would read as zero ticks. Empty off Linux.
    """
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/schedstat") as fh:
                out[thread.name] = int(fh.read().split()[0]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
    return out


class Diagnostics:
    """Record GC pauses while serving and each thread's CPU time at shutdown; write them as JSON."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self._path = path
        self._pauses = GcPauses()
        self._pauses.install()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            # From the first request on: the collections of startup (and the freeze) are not load.
            self._pauses.recording = True
            await self.app(scope, receive, send)
            return

        async def receive_and_record() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.write()
            return message

        await self.app(scope, receive_and_record, send)

    def write(self) -> None:
        """Write what was recorded so far to the file (atomically: a reader never sees half)."""
        document = {
            "pid": os.getpid(),
            "gc": {str(gen): entry for gen, entry in self._pauses.stats.items()},
            "pause_buckets_ms": list(PAUSE_BUCKETS_MS),
            "thread_cpu_s": thread_cpu_seconds(),
            "process_cpu_s": time.process_time(),
            "frozen": gc.get_freeze_count(),
        }
        with open(self._path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(document, fh)
        os.replace(self._path + ".tmp", self._path)


__all__ = [
    "APP_ENV",
    "DIAGNOSTICS_ENV",
    "E2E_APPS",
    "FREEZE_ENV",
    "PAUSE_BUCKETS_MS",
    "Diagnostics",
    "GcPauses",
    "create_app",
    "thread_cpu_seconds",
]
