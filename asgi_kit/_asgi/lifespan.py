"""Run resource set-up and tear-down inside the ASGI lifespan of any app.

A layer, not a framework hook, so the same stack opens a database pool under Starlette,
FastAPI, Litestar or a bare app. Startup hooks run before the app sees
``lifespan.startup``; shutdown hooks run after the app answered ``lifespan.shutdown``.
A failing startup hook is reported to the server as ``lifespan.startup.failed``.

Once the app has started, the heap it built (modules, routes, pools, clients) lives as long as
the process. Left to the collector, every full collection walks all of it again, and a full
collection runs whenever enough objects survive: under load, spans waiting in a batch
processor are enough, and the request that triggers it waits the whole walk (tens of
milliseconds on a FastAPI app with OpenTelemetry). ``freeze_heap`` therefore collects once and
``gc.freeze()``s the startup heap when the app reports ``lifespan.startup.complete``: later
collections see only what requests allocate. Objects frozen are never collected; that is
meant for a startup heap, and it is why the freeze happens once, after startup.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Sequence

from asgi_kit._asgi.options import check_bool, check_callable
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send

Hook = Callable[[], Awaitable[object]]


class LifespanHooksMiddleware:
    """Await ``on_startup`` hooks at startup and ``on_shutdown`` hooks (reversed) at shutdown.

    Place it outermost, so resources are ready before any other layer's startup.

    Args:
        app: the ASGI app.
        on_startup: awaited in order before the app sees ``lifespan.startup``.
        on_shutdown: awaited in reverse order after the app answered ``lifespan.shutdown``.
        freeze_heap: collect once and ``gc.freeze()`` the startup heap when the app has
            started (see the module docstring); ``False`` leaves the collector as it is.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
        freeze_heap: bool = True,
    ) -> None:
        self.app = app
        self._on_startup = tuple(check_callable("on_startup hooks", hook) for hook in on_startup)
        self._on_shutdown = tuple(check_callable("on_shutdown hooks", hook) for hook in reversed(on_shutdown))
        self._freeze_heap = check_bool("freeze_heap", freeze_heap)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        startup_failed = False

        async def receive_after_startup_hooks() -> Message:
            nonlocal startup_failed
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self._on_startup:
                        await hook()
                except Exception as exc:
                    startup_failed = True
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    raise
            return message

        async def send_after_shutdown_hooks(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete" and self._freeze_heap:
                gc.collect()
                gc.freeze()
            elif message["type"] == "lifespan.shutdown.complete":
                await self._run_shutdown()
            await send(message)

        try:
            await self.app(scope, receive_after_startup_hooks, send_after_shutdown_hooks)
        except Exception:
            if startup_failed:
                return
            raise

    async def _run_shutdown(self) -> None:
        for hook in self._on_shutdown:
            await hook()


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown for an app that has nothing to set up.

    The kit's own small apps (health, metrics, the demo router) call this, so they can be
    served alone, by servers that insist on the lifespan protocol, with ``lifespan="on"``.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["LifespanHooksMiddleware", "answer_lifespan"]
