"""The contract every middleware of the kit must keep, as a reusable test base class.

Subclass :class:`MiddlewareContract` in a ``Test*`` class and implement :meth:`make`; pytest
(with pytest-asyncio in ``auto`` mode, both in the ``testing`` extra) collects the checks below
for that middleware::

    class TestRequestIDContract(MiddlewareContract):
        def make(self, app, **options):
            return RequestIDMiddleware(app, **options)

Hooks let a layer say what it legitimately does (headers it needs, how it answers an
exception, what per-request state it exposes for the interleaving check).
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgi_kit._asgi.optional import require
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.testing.asgi import LifespanProbe, RecordingSend, StrictReceive, make_scope, run_lifespan

require("pytest", "testing")

import pytest  # noqa: E402  (after the check that names the extra)


class MiddlewareContract:
    """Checks: lifespan pass-through, websocket, exclude_paths, exceptions before and after
    ``http.response.start``, streaming chunk by chunk, and interleaved concurrent requests."""

    #: whether the layer accepts ``exclude_paths=``
    supports_exclude_paths = True
    #: whether a websocket connection reaches the app (False: the layer handles it itself)
    websocket_reaches_app = True
    #: whether the layer turns an exception before the response into its own 500
    renders_errors = False

    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        raise NotImplementedError

    def request_headers(self) -> list[tuple[str, str]]:
        """Headers a request needs to get through the layer (credentials, say)."""
        return []

    def scope(self, path: str = "/ok", **kwargs: Any) -> Scope:
        headers = [*self.request_headers(), *kwargs.pop("headers", [])]
        return make_scope(path, headers=headers, **kwargs)

    def state_of(self, scope: Scope, response: RecordingSend) -> Any:
        """Per-request state the layer exposes (e.g. the request id); ``None`` if none."""
        return None

    # -- lifespan ---------------------------------------------------------------------------

    async def test_lifespan_passes_through(self) -> None:
        """Lifespan reaches the app untouched and its answers reach the server."""
        probe = LifespanProbe()
        sent = await run_lifespan(self.make(probe))
        assert probe.seen == ["lifespan.startup", "lifespan.shutdown"]
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    # -- websocket --------------------------------------------------------------------------

    async def test_websocket(self) -> None:
        """A websocket connection reaches the app (or is handled as the layer documents)."""
        reached: list[Scope] = []

        async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
            assert scope["type"] == "websocket"
            reached.append(scope)
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

        inbox: asyncio.Queue[Message] = asyncio.Queue()
        inbox.put_nowait({"type": "websocket.connect"})
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = self.scope("/ws", type="websocket")
        await asyncio.wait_for(self.make(ws_app)(scope, inbox.get, send), 5)
        if self.websocket_reaches_app:
            assert reached, "websocket scope did not reach the app"
            assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
        else:
            assert sent, "the layer neither passed the websocket on nor answered it"

    # -- exclude_paths ----------------------------------------------------------------------

    async def test_excluded_path_is_untouched(self) -> None:
        """An excluded path gets exactly the app's response, headers and all."""
        if not self.supports_exclude_paths:
            pytest.skip("this layer has no exclude_paths option")

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
            await send({"type": "http.response.body", "body": b"ok"})

        layer = self.make(app, exclude_paths=["/health"])
        send = RecordingSend()
        await layer(make_scope("/health"), StrictReceive(), send)
        assert send.status == 200
        assert send.headers == [(b"x-app", b"1")]
        assert send.body == b"ok"

    # -- exceptions -------------------------------------------------------------------------

    async def test_exception_before_response_start(self) -> None:
        """An exception before the response propagates (or becomes one 500 if the layer renders)."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            raise RuntimeError("before start")

        send = RecordingSend()
        with pytest.raises(RuntimeError, match="before start"):
            await self.make(app)(self.scope(), StrictReceive(), send)
        starts = [m for m in send.messages if m["type"] == "http.response.start"]
        if self.renders_errors:
            assert len(starts) == 1
            assert starts[0]["status"] == 500
        else:
            assert starts == []

    async def test_exception_after_response_start(self) -> None:
        """An exception mid-body propagates and never causes a second response start."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("after start")

        send = RecordingSend()
        with pytest.raises(RuntimeError, match="after start"):
            await self.make(app)(self.scope(), StrictReceive(), send)
        assert [m["type"] for m in send.messages] == ["http.response.start", "http.response.body"]
        assert send.status == 200

    async def test_cancellation_propagates(self) -> None:
        """Cancelling the request task cancels the app and is never turned into a response."""
        started = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            started.set()
            await asyncio.sleep(30)

        send = RecordingSend()
        task = asyncio.ensure_future(self.make(app)(self.scope(), StrictReceive(), send))
        await asyncio.wait_for(started.wait(), 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert send.start is None

    # -- streaming --------------------------------------------------------------------------

    async def test_streamed_body_is_forwarded_chunk_by_chunk(self) -> None:
        """Each body chunk reaches the server before the app produces the next one."""
        gate = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await gate.wait()
            await send({"type": "http.response.body", "body": b"second", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        send = RecordingSend()
        task = asyncio.ensure_future(self.make(app)(self.scope(), StrictReceive(), send))
        await send.wait_for(lambda s: b"first" in s.body_chunks)
        gate.set()
        await asyncio.wait_for(task, 2)
        assert send.body_chunks == [b"first", b"second", b""]

    async def test_request_body_streams_to_app(self) -> None:
        """Request body chunks reach the app unchanged and in order."""
        received: list[bytes] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            more = True
            while more:
                message = await receive()
                received.append(message.get("body", b""))
                more = message.get("more_body", False)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})

        send = RecordingSend()
        await self.make(app)(self.scope(method="POST"), StrictReceive([b"a", b"b", b"c"]), send)
        assert received == [b"a", b"b", b"c"]
        assert send.body == b"done"

    # -- concurrency ------------------------------------------------------------------------

    async def test_interleaved_requests_keep_their_own_state(self) -> None:
        """Two requests interleaved inside the app each get their own response and state."""
        arrived = [asyncio.Event(), asyncio.Event()]

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            index = 0 if scope["path"] == "/a" else 1
            arrived[index].set()
            await arrived[1 - index].wait()
            status = 200 if index == 0 else 201
            await send({"type": "http.response.start", "status": status, "headers": []})
            await arrived[1 - index].wait()
            await send({"type": "http.response.body", "body": scope["path"].encode()})

        layer = self.make(app)
        scopes = [self.scope("/a"), self.scope("/b")]
        sends = [RecordingSend(), RecordingSend()]
        await asyncio.wait_for(
            asyncio.gather(*(layer(s, StrictReceive(), r) for s, r in zip(scopes, sends, strict=True))), 5
        )
        assert (sends[0].status, sends[0].body) == (200, b"/a")
        assert (sends[1].status, sends[1].body) == (201, b"/b")
        state_a = self.state_of(scopes[0], sends[0])
        state_b = self.state_of(scopes[1], sends[1])
        if state_a is not None or state_b is not None:
            assert state_a != state_b


__all__ = ["MiddlewareContract"]
