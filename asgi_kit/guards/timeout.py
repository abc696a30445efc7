"""``TimeoutMiddleware``: a 504 problem when the app is too slow to start its response.

The timer covers time-to-first-byte only: from the moment the request reaches the layer until
the app sends ``http.response.start``. Once the response has started the timer is removed, so a
long download or a server-sent-event stream is never cut.

The app runs in the *same* task, under :func:`asyncio.timeout`, not in a task of its own: the
app sees the caller's contextvars and any contextvar it sets stays visible to the layers around
it (a task would copy the context and lose what the app set).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence

from asgi_kit._asgi.context import get_request_id, scope_request_id
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors import GATEWAY_TIMEOUT, write_problem_details

logger = logging.getLogger("asgi_kit.guards")


class TimeoutMiddleware:
    """Answer ``504 Gateway Timeout`` (problem+json) when the app has not started its response in time.

    Place it near the outside of the stack, inside the request-id, logging, metrics and tracing
    layers (so the 504 is logged, counted and traced with the request id) and outside the
    authentication, budget and application layers (whose time it bounds).

    When the time is up, the app is cancelled (``asyncio.CancelledError`` is raised at the point
    where it is waiting) and, once it has unwound, the layer sends the 504. Cleanup that the app
    runs on cancellation therefore delays the 504; keep it short. A response that has already
    started is never cut: the timer stops at ``http.response.start``. Reading the request body
    counts towards the timeout. Cancelling the request from outside (the client went away, the
    server shuts down) propagates unchanged. Websocket and lifespan scopes pass through.

    Reads nothing from the scope but the path (for ``exclude_paths``); writes no scope key. Logs a
    warning on ``asgi_kit.guards`` with the request id for every timeout.

    Args:
        app: the wrapped ASGI app.
        timeout: seconds the app has to start its response (a finite number > 0).
        exclude_paths: exact paths (or ``/prefix/*``) that are never timed: long polls, uploads.
    """

    def __init__(self, app: ASGIApp, *, timeout: float, exclude_paths: Sequence[str] = ()) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        self.app = app
        self._timeout = float(timeout)
        self._exclude = PathFilter(exclude_paths)

    def __repr__(self) -> str:
        return f"TimeoutMiddleware(timeout={self._timeout!r}, exclude_paths={self._exclude!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return

        started = False
        began = time.perf_counter()
        deadline = asyncio.timeout(self._timeout)

        async def send_stopping_timer(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                # The response is under way: from here on the app may take as long as it needs.
                if not deadline.expired():
                    deadline.reschedule(None)
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, send_stopping_timer)
        except TimeoutError:
            # Only our own deadline becomes a 504; a TimeoutError the app raised is its own error.
            if started or not deadline.expired():
                raise
        if deadline.expired() and not started:
            # Reached both when the cancellation unwound the app and when the app swallowed it.
            self._log_timeout(scope, time.perf_counter() - began)
            await write_problem_details(send, GATEWAY_TIMEOUT, scope=scope)

    def _log_timeout(self, scope: Scope, elapsed: float) -> None:
        logger.warning(
            "request timed out after %.3fs (limit %.3fs) before the response started: %s %s",
            elapsed,
            self._timeout,
            scope.get("method"),
            (scope.get("path") or "")[:512].encode("unicode_escape").decode("ascii"),
            extra={"request_id": get_request_id() or scope_request_id(scope), "timeout": self._timeout},
        )


__all__ = ["TimeoutMiddleware"]
