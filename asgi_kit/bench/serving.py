"""What every end-to-end server runs: the app its factory builds, optionally diagnosed and frozen.

The e2e runner starts ``uvicorn --factory asgi_kit.bench.serving:create_app`` with
``ASGI_KIT_BENCH_FACTORY=module:callable`` naming the factory of the app to serve (a
callable taking no argument). On top of what that factory builds:

``ASGI_KIT_BENCH_GC_FREEZE=1`` (the runner's ``freeze`` mode) collects and ``gc.freeze()``s
the startup heap, as a hand-tuned service would; with ``0`` (the ``default`` mode) only what
the app itself does happens.

``ASGI_KIT_BENCH_DIAGNOSTICS=<file>`` (opt-in) records every garbage collection from the
first request on through ``gc.callbacks`` (count, total and longest pause per generation, a
histogram of pauses) and, when the lifespan shuts down, the CPU time of each thread of the
process; the figures are written as JSON to ``<file>.<pid>``.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import threading
import time
from typing import Any, Final

from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send

FACTORY_ENV: Final = "ASGI_KIT_BENCH_FACTORY"
FREEZE_ENV: Final = "ASGI_KIT_BENCH_GC_FREEZE"
DIAGNOSTICS_ENV: Final = "ASGI_KIT_BENCH_DIAGNOSTICS"
#: Upper bounds (ms) of the GC pause histogram's buckets; the last bucket is open.
PAUSE_BUCKETS_MS: Final = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def import_object(reference: str) -> Any:
    """The object ``module:attribute`` (dots allowed after the colon) names.

    Raises:
        ImportError: the module cannot be imported, or has no such attribute.
        ValueError: ``reference`` is not ``module:attribute``.
    """
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected 'module:attribute', got {reference!r}")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ImportError(f"{module_name!r} has no attribute {attribute!r}") from None
    return found


def create_app() -> ASGIApp:
    """Build the app of the factory ``ASGI_KIT_BENCH_FACTORY`` names, diagnosed and frozen as asked."""
    reference = os.environ.get(FACTORY_ENV)
    if not reference:
        raise ValueError(f"{FACTORY_ENV} must name the app factory as 'module:callable'")
    app: ASGIApp = import_object(reference)()
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
    "DIAGNOSTICS_ENV",
    "FACTORY_ENV",
    "FREEZE_ENV",
    "PAUSE_BUCKETS_MS",
    "Diagnostics",
    "GcPauses",
    "create_app",
    "import_object",
    "thread_cpu_seconds",
]
