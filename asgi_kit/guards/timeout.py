"""``TimeoutMiddleware``: a 504 problem when the app is too slow to start its response.

The timer covers time-to-first-byte only: from the moment the request reaches the layer until
the app sends ``http.response.start``. Once the response has started the timer is removed, so a
long download or a server-sent-event stream is never cut.

The app runs in the *same* task, not in a task of its own: it sees the caller's contextvars and
any contextvar it sets stays visible to the layers around it (a task would copy the context and
lose what the app set). When the time is up, a timer callback sends the 504 from a short helper
task and cancels the request task, the way :func:`asyncio.timeout` does (with the same
``uncancel`` bookkeeping, so an outer cancellation is never mistaken for ours). Sending from the
helper means the 504 goes out on time even when the app cannot be interrupted at once: a
synchronous handler running in a thread, or slow cleanup on cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final

from asgi_kit._asgi.context import get_request_id, scope_request_id
from asgi_kit._asgi.options import check_number
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors import GATEWAY_TIMEOUT, write_problem_details

logger = logging.getLogger("asgi_kit.guards")

# Per-request states of the timer, kept in a local of __call__ (never on self).
_RUNNING: Final = 0
_STARTED: Final = 1
_TIMED_OUT: Final = 2


class TimeoutMiddleware:
    """Answer ``504 Gateway Timeout`` (problem+json) when the app has not started its response in time.

    Place it near the outside of the stack, inside the request-id, logging, metrics and tracing
    layers (so the 504 is logged, counted and traced with the request id) and outside the
    authentication, budget and application layers (whose time it bounds).

    When the time is up the 504 is sent at once and the app is cancelled
    (``asyncio.CancelledError`` is raised where it is waiting). Whatever the app sends after that
    is dropped; the layer returns once the app has unwound. A response that has already started
    is never cut: the timer stops at ``http.response.start``. Reading the request body counts
    towards the timeout. Cancelling the request from outside (the client went away, the server
    shuts down) propagates unchanged. Websocket and lifespan scopes pass through.

    Reads nothing from the scope but the path (for ``exclude_paths``); writes no scope key. Logs a
    warning on ``asgi_kit.guards`` with the request id for every timeout.

    Args:
        app: the wrapped ASGI app.
        timeout: seconds the app has to start its response (a finite number > 0).
        exclude_paths: exact paths (or ``/prefix/*``) that are never timed: long polls, uploads.
    """

    def __init__(self, app: ASGIApp, *, timeout: float, exclude_paths: Sequence[str] = ()) -> None:
        check_number("timeout", timeout, exclusive_minimum=0)
        self.app = app
        self._timeout = float(timeout)
        self._exclude = PathFilter(exclude_paths)

    def __repr__(self) -> str:
        return f"TimeoutMiddleware(timeout={self._timeout!r}, exclude_paths={self._exclude!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None:  # not run by a task (a bare coroutine driven by hand): nothing to cancel
            await self.app(scope, receive, send)
            return
        deadline = _Deadline(task, scope, send, self._timeout)
        cancelling_on_entry = task.cancelling()
        outer_cancel = False
        try:
            try:
                await self.app(scope, receive, deadline.send_unless_timed_out)
            finally:
                if deadline.state != _STARTED:  # a started response cancelled it already
                    # After a timeout this also drops the fired handle's callback, and with it
                    # the reference cycle handle -> deadline.expire -> deadline.
                    deadline.timer.cancel()
                if deadline.state == _TIMED_OUT:
                    # Balance our task.cancel() however the app ended (it may have swallowed it).
                    outer_cancel = task.uncancel() > cancelling_on_entry
        except asyncio.CancelledError:
            if deadline.state != _TIMED_OUT or outer_cancel:
                if deadline.answer is not None:
                    deadline.answer.cancel()
                raise
        except Exception:
            # The app failed while unwinding from our cancellation: the 504 still completes.
            if deadline.answer is not None:
                await deadline.answer
            raise
        if deadline.answer is not None:
            await deadline.answer


def _log_timeout(scope: Scope, elapsed: float, timeout: float) -> None:
    logger.warning(
        "request timed out after %.3fs (limit %.3fs) before the response started: %s %s",
        elapsed,
        timeout,
        scope.get("method"),
        (scope.get("path") or "")[:512].encode("unicode_escape").decode("ascii"),
        extra={"request_id": get_request_id() or scope_request_id(scope), "timeout": timeout},
    )


class _Deadline:
    """One timed request: its timer, its state, and the 504 sent when the timer fires.

    One slotted object rather than closure cells: cells are made on entry to the frame that owns
    them, so in ``__call__`` every passed-through request paid for them, and in a coroutine of
    their own every timed request paid for the extra frame.
    """

    __slots__ = ("_began", "_loop", "_scope", "_send", "_task", "_timeout", "answer", "state", "timer")

    def __init__(self, task: asyncio.Task[Any], scope: Scope, send: Send, timeout: float) -> None:
        self._task = task
        self._scope = scope
        self._send = send
        self.state = _RUNNING
        self.answer: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        # call_at on the loop's own clock: call_later would read it again, and the elapsed time
        # logged on a timeout is then measured on the clock that fired the timer.
        self._began = self._loop.time()
        self._timeout = timeout
        self.timer = self._loop.call_at(self._began + timeout, self.expire)

    def expire(self) -> None:
        # Only ever runs while _RUNNING: the timer is cancelled when the state leaves it, and
        # the event loop skips a cancelled handle even if it was already due.
        self.state = _TIMED_OUT
        _log_timeout(self._scope, self._loop.time() - self._began, self._timeout)
        self.answer = asyncio.ensure_future(
            write_problem_details(self._send, GATEWAY_TIMEOUT, scope=self._scope)
        )
        self._task.cancel()

    async def send_unless_timed_out(self, message: Message) -> None:
        if self.state == _TIMED_OUT:
            return  # the 504 took this response's place
        if self.state == _RUNNING and message["type"] == "http.response.start":
            # The response is under way: from here on the app may take as long as it needs.
            self.state = _STARTED
            self.timer.cancel()
        await self._send(message)


__all__ = ["TimeoutMiddleware"]
