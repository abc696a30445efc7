"""``ResponseObserver``: what one HTTP response said, and whether its client stayed to hear it.

The access log, the metrics and the server span all report the outcome of the same request;
they read it from this one object so they report the same one. :attr:`ResponseObserver.final_status`
is that outcome:

* :data:`CLIENT_CLOSED_REQUEST` (499, nginx's convention) when the client went away before the
  response completed, started or not: whatever status was sent, the client did not get it all;
* :data:`NO_RESPONSE_STATUS` (500) when the app raised, or returned, before starting a response
  (what the server answers);
* otherwise the status the app sent, also when it failed after sending it.

:attr:`ResponseObserver.error` says whether the app failed: it raised (before or after starting
the response) or never answered; never for a 499, whatever the app raised on noticing.

The client went away when ``http.disconnect`` arrived before the response completed (uvicorn
silently drops what is sent after a disconnect, so this is often the only sign), when ``send``
raised ``OSError`` (ASGI spec 2.4), or when the request task was cancelled (servers cancel it
when the client leaves), which the layer running the app reports with :meth:`app_raised`.
"""

from __future__ import annotations

import asyncio
from typing import Final

from asgi_kit._asgi.context import TraceIds, trace_ids_var
from asgi_kit._asgi.types import Message, Receive, Send

#: The status of a request whose client went away before its response completed.
CLIENT_CLOSED_REQUEST: Final = 499
#: The status of a request whose app raised or returned before starting a response.
NO_RESPONSE_STATUS: Final = 500


class ResponseObserver:
    """Watches one HTTP request's ``receive`` and ``send``; pass the app :meth:`receive` and :meth:`send`.

    One slotted object per request rather than closure cells: cells are made on entry to the
    frame that owns them, so every request a layer passes through unobserved would pay for them.
    :attr:`final_status` and :attr:`error` are plain attributes kept current as the request goes
    (a property read per request costs the access log more than the rest of this object). A
    layer gets it from :func:`observe_response` and runs the app as::

        observer = observe_response(receive, send)
        try:
            await app(scope, observer.receive, observer.send)
        except BaseException as exc:
            observer.app_raised(exc)
            raise
        finally:
            report(observer.final_status, observer.error, observer.bytes_sent)
    """

    __slots__ = (
        "_receive",
        "_send",
        "bytes_sent",
        "client_gone",
        "completed",
        "error",
        "final_status",
        "raised",
        "started",
        "status",
        "trace",
    )

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        #: the status of ``http.response.start``, as the app sent it; 0 before
        self.status: int = 0
        #: body bytes the server accepted
        self.bytes_sent = 0
        #: ``http.response.start`` was sent
        self.started = False
        #: the final body (or a ``pathsend``) was accepted by the server, the client still there
        self.completed = False
        #: the client went away (see :attr:`client_closed` for before the response completed)
        self.client_gone = False
        #: the app raised something other than a cancellation
        self.raised = False
        #: the request's outcome as one status (see the module docstring)
        self.final_status: int = NO_RESPONSE_STATUS
        #: the app failed: it raised (even after the response started) or never answered; a
        #: client that went away is not the app's failure, whatever the app raised on noticing
        self.error = True
        #: the trace ids current when the response started: a tracing layer inside the one
        #: reading them has reset its contextvar by the time the app returns
        self.trace: TraceIds | None = None

    def __repr__(self) -> str:
        return (
            f"ResponseObserver(final_status={self.final_status}, error={self.error}, "
            f"bytes_sent={self.bytes_sent}, started={self.started}, completed={self.completed}, "
            f"client_gone={self.client_gone}, raised={self.raised})"
        )

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.completed:
            self._client_left()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            try:
                await self._send(message)
            except OSError:
                self._client_left()
                raise
            self.bytes_sent += len(message.get("body", b""))
            # After a disconnect servers drop what is sent: a final body then completes nothing.
            if not message.get("more_body", False) and not self.client_gone:
                self.completed = True
            return
        if kind == "http.response.start":
            self.status = message["status"]
            self.started = True
            self.trace = trace_ids_var.get()  # in the app's context, where a tracing layer set it
            if not self.client_gone:
                self.final_status = self.status
                self.error = False  # the app has not returned yet, so it has not raised
        try:
            await self._send(message)
        except OSError:
            self._client_left()
            raise
        if kind == "http.response.pathsend" and not self.client_gone:
            self.completed = True

    def app_raised(self, exc: BaseException) -> None:
        """Report what the app raised: a cancellation means the client went away."""
        if isinstance(exc, asyncio.CancelledError):
            self._client_left()
            return
        self.raised = True
        if not self.client_closed:
            self.error = True

    @property
    def client_closed(self) -> bool:
        """The client went away before the response completed: the outcome is 499."""
        return self.client_gone and not self.completed

    def _client_left(self) -> None:
        self.client_gone = True
        if not self.completed:
            self.final_status = CLIENT_CLOSED_REQUEST
            self.error = False


def observe_response(receive: Receive, send: Send) -> ResponseObserver:
    """The observer of the response ``send`` belongs to: the one of the layer just outside when
    ``receive`` and ``send`` are that observer's own, else a new one.

    Layers next to each other (tracing, the access log and the metrics, in the kit's order) then
    watch each response once: nothing between them can change what they would see, so one
    observer, one ``send`` wrapper per message and one outcome serve them all.
    """
    outside = getattr(send, "__self__", None)
    if isinstance(outside, ResponseObserver):
        receiving: object = getattr(receive, "__self__", None)
        if receiving is outside:
            return outside
    return ResponseObserver(receive, send)


__all__ = ["CLIENT_CLOSED_REQUEST", "NO_RESPONSE_STATUS", "ResponseObserver", "observe_response"]
