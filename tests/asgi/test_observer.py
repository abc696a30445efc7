"""ResponseObserver: the one outcome of a request (status, 499, 500, error) the layers report."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit._asgi.context import TraceIds, trace_ids_var
from asgi_kit._asgi.observer import (
    CLIENT_CLOSED_REQUEST,
    NO_RESPONSE_STATUS,
    ResponseObserver,
    observe_response,
)
from asgi_kit._asgi.routes import UNMATCHED_ROUTE
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.logging import LoggingMiddleware
from asgi_kit.logging.middleware import CLIENT_CLOSED_REQUEST as LOGGING_CLIENT_CLOSED
from asgi_kit.metrics import MetricsMiddleware
from asgi_kit.metrics.middleware import CLIENT_CLOSED_STATUS
from asgi_kit.testing import RecordingSend, StrictReceive, make_scope
from tests.logging.helpers import json_logger, records

START: Message = {"type": "http.response.start", "status": 201, "headers": []}


def body(data: bytes, *, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


class GoneSend:
    """A server ``send`` (ASGI 2.4) that raises ``OSError`` from its ``fail_at``-th message on."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.accepted: list[Message] = []

    async def __call__(self, message: Message) -> None:
        if len(self.accepted) >= self.fail_at:
            raise ConnectionResetError("client gone")
        self.accepted.append(message)


async def run(observer: ResponseObserver, app: ASGIApp) -> BaseException | None:
    """Run ``app`` as the layers do; returns what it raised (already reported to the observer)."""
    try:
        await app(make_scope(), observer.receive, observer.send)
    except BaseException as exc:
        observer.app_raised(exc)
        return exc
    return None


def test_one_constant_under_every_public_name() -> None:
    """The access log's and the metrics' names for 499 are the ground floor's one constant."""
    assert CLIENT_CLOSED_REQUEST == 499
    assert LOGGING_CLIENT_CLOSED is CLIENT_CLOSED_REQUEST
    assert CLIENT_CLOSED_STATUS is CLIENT_CLOSED_REQUEST


async def test_completed_response_reports_its_status_and_bytes() -> None:
    """A response sent to the end is its own status; only body bytes are counted."""
    sent = RecordingSend()
    observer = ResponseObserver(StrictReceive(), sent)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(START)
        await send(body(b"hello ", more=True))
        await send(body(b"world"))

    assert await run(observer, app) is None
    assert sent.body == b"hello world"
    assert (observer.started, observer.completed, observer.client_gone) == (True, True, False)
    assert (observer.final_status, observer.error, observer.bytes_sent) == (201, False, 11)


async def test_disconnect_mid_stream_is_499_without_error() -> None:
    """``http.disconnect`` after the start, before the final body: 499, and not the app's error,
    even when the app sends the rest anyway (servers drop it)."""
    receive = StrictReceive(disconnect_after_body=True)
    observer = ResponseObserver(receive, RecordingSend())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(START)
        await send(body(b"first", more=True))
        assert (await receive())["type"] == "http.disconnect"
        await send(body(b"rest"))

    await run(observer, app)
    assert observer.started and not observer.completed and observer.client_gone
    assert (observer.final_status, observer.error) == (CLIENT_CLOSED_REQUEST, False)


async def test_disconnect_after_completion_keeps_the_status() -> None:
    """A listener that hears ``http.disconnect`` once the response is complete changes nothing."""
    receive = StrictReceive(disconnect_after_body=True)
    observer = ResponseObserver(receive, RecordingSend())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(START)
        await send(body(b"done"))
        await receive()

    await run(observer, app)
    assert not observer.client_gone
    assert (observer.final_status, observer.error) == (201, False)


@pytest.mark.parametrize("fail_at", [0, 1, 2])
async def test_send_raising_oserror_is_499(fail_at: int) -> None:
    """A ``send`` that raises ``OSError`` (ASGI 2.4) means the client left; the app sees the error."""
    server = GoneSend(fail_at)
    observer = ResponseObserver(StrictReceive(), server)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send(body(b"abc", more=True))
        await send(body(b"def"))

    raised = await run(observer, app)
    assert isinstance(raised, OSError)
    assert observer.client_gone and not observer.completed
    assert (observer.final_status, observer.error) == (CLIENT_CLOSED_REQUEST, False)
    assert observer.bytes_sent == 3 * max(0, fail_at - 1)  # the refused body is not counted


async def test_oserror_swallowed_by_the_app_is_still_499() -> None:
    """An app that catches the failed send and returns (a streaming handler giving up) is a 499."""
    observer = ResponseObserver(StrictReceive(), GoneSend(2))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        try:
            for _ in range(3):
                await send(body(b"chunk", more=True))
        except OSError:
            return

    assert await run(observer, app) is None
    assert (observer.final_status, observer.error, observer.bytes_sent) == (CLIENT_CLOSED_REQUEST, False, 5)


async def test_cancellation_is_499() -> None:
    """A request task cancelled before the response completed (the server's way to say the client left)."""
    started = asyncio.Event()
    observer = ResponseObserver(StrictReceive(), RecordingSend())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(run(observer, app))
    await started.wait()
    task.cancel()
    assert isinstance(await task, asyncio.CancelledError)
    assert (observer.final_status, observer.error, observer.raised) == (CLIENT_CLOSED_REQUEST, False, False)


@pytest.mark.parametrize("raises", [True, False])
async def test_no_response_started_is_500_and_an_error(raises: bool) -> None:
    """An app that raised, or returned, before starting a response: 500, an error."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if raises:
            raise RuntimeError("boom")

    observer = ResponseObserver(StrictReceive(), RecordingSend())
    await run(observer, app)
    assert not observer.started and observer.raised is raises
    assert (observer.final_status, observer.error) == (NO_RESPONSE_STATUS, True)


async def test_raising_after_the_start_keeps_the_sent_status_and_is_an_error() -> None:
    """A failure mid-response: the status already sent, and the error flag."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send(body(b"part", more=True))
        raise RuntimeError("boom")

    observer = ResponseObserver(StrictReceive(), RecordingSend())
    await run(observer, app)
    assert (observer.final_status, observer.error, observer.bytes_sent) == (201, True, 4)


async def test_pathsend_completes_the_response() -> None:
    """``http.response.pathsend`` is a final message: the response is complete."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send({"type": "http.response.pathsend", "path": "/etc/hostname"})

    server = GoneSend(fail_at=99)
    observer = ResponseObserver(StrictReceive(), server)
    await run(observer, app)
    assert observer.completed and observer.final_status == 201


async def test_trace_ids_are_read_when_the_response_starts() -> None:
    """The ids a tracing layer inside set are kept, though it resets them before the app returns."""
    ids = TraceIds("a" * 32, "b" * 16, f"00-{'a' * 32}-{'b' * 16}-01")

    async def traced_app(scope: Scope, receive: Receive, send: Send) -> None:
        token = trace_ids_var.set(ids)
        try:
            await send(START)
            await send(body(b""))
        finally:
            trace_ids_var.reset(token)

    observer = ResponseObserver(StrictReceive(), RecordingSend())
    await run(observer, traced_app)
    assert trace_ids_var.get() is None and observer.trace == ids


def test_layers_next_to_each_other_share_one_observer() -> None:
    """A layer handed an observer's own receive and send (nothing between it and the layer that
    made it) reads that observer: one send wrapper per message however many layers observe."""
    outer = observe_response(StrictReceive(), RecordingSend())
    assert observe_response(outer.receive, outer.send) is outer


def test_a_layer_between_gets_its_own_observer() -> None:
    """A send or receive that is not the observer's (a layer between changed it) gets a new one."""
    outer = observe_response(StrictReceive(), RecordingSend())

    async def stamped_send(message: Message) -> None:
        await outer.send(message)

    async def replayed_receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    for receive, send in [(outer.receive, stamped_send), (replayed_receive, outer.send)]:
        inner = observe_response(receive, send)
        assert inner is not outer and isinstance(inner, ResponseObserver)
    other = observe_response(StrictReceive(), RecordingSend())
    assert observe_response(outer.receive, other.send) is not other


async def test_nested_layers_report_one_outcome() -> None:
    """Three layers in the kit's order see a client leaving mid-stream as one 499."""
    seen: list[ResponseObserver] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(observe_response(receive, send))
        await send(START)
        await send(body(b"first", more=True))
        while (await receive())["type"] != "http.disconnect":
            pass

    metrics = MetricsMiddleware(app)
    with json_logger() as (logger, stream):
        layers = LoggingMiddleware(metrics, logger=logger)
        await layers(make_scope(), StrictReceive(disconnect_after_body=True), RecordingSend())
    (observer,) = seen
    assert observer.final_status == CLIENT_CLOSED_REQUEST
    assert [record["status"] for record in records(stream)] == [CLIENT_CLOSED_REQUEST]
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status": "499", "service": "app"}
    assert metrics.metrics.registry.get_sample_value("http_requests_total", labels) == 1.0


# Arbitrary request lives: each step is one thing the app does or the client does to it.
@dataclass(frozen=True)
class Step:
    kind: str  # "start", "body", "final", "disconnect", "receive"
    size: int = 0


steps = st.lists(
    st.one_of(
        st.just(Step("start")),
        st.builds(Step, st.just("body"), st.integers(0, 64)),
        st.builds(Step, st.just("final"), st.integers(0, 64)),
        st.just(Step("disconnect")),
        st.just(Step("receive")),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.one_of(st.none(), st.integers(0, 12)), st.booleans())
def test_outcome_over_arbitrary_message_sequences(
    script: list[Step], fail_at: int | None, raise_at_end: bool
) -> None:
    """Whatever the app sends, the client does and the server refuses, the outcome is the one meaning:
    499 iff the client went away before the final body was accepted; otherwise the status sent,
    or 500 with no response; the bytes are those the server accepted."""

    async def scenario() -> None:
        server = GoneSend(fail_at if fail_at is not None else 1 << 30)
        disconnected = asyncio.Event()
        receive_calls: list[Message] = []

        async def receive() -> Message:
            if disconnected.is_set():
                message: Message = {"type": "http.disconnect"}
            else:
                message = {"type": "http.request", "body": b"", "more_body": False}
            receive_calls.append(message)
            return message

        observer = ResponseObserver(receive, server)
        # What the client and the server did, as the test sees it (independent of the observer).
        gone_before_final = False
        accepted_final = False
        started = False
        status = 0
        accepted_bytes = 0
        sent_final = False

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal gone_before_final, accepted_final, started, status, accepted_bytes, sent_final
            for step in script:
                if step.kind == "disconnect":
                    disconnected.set()
                    continue
                if step.kind == "receive":
                    if (await receive())["type"] == "http.disconnect" and not accepted_final:
                        gone_before_final = True
                    continue
                if (step.kind == "start") is started or sent_final:
                    continue  # a valid app: one start, bodies after it, nothing after the final one
                if step.kind == "start":
                    message: Message = {"type": "http.response.start", "status": 200 + len(script)}
                else:
                    message = body(b"x" * step.size, more=step.kind == "body")
                sent_final = step.kind == "final"
                try:
                    await send(message)
                except OSError:
                    if not accepted_final:
                        gone_before_final = True
                    return  # the app gives up, as a streaming handler does
                if step.kind == "start":
                    started, status = True, message["status"]
                else:
                    accepted_bytes += step.size
                    # Sent after the client left, the final body completes nothing.
                    accepted_final = accepted_final or (step.kind == "final" and not gone_before_final)
            if raise_at_end:
                raise RuntimeError("app failure")

        raised = await run(observer, app)
        assert observer.bytes_sent == accepted_bytes
        assert observer.completed is accepted_final
        if gone_before_final:
            assert (observer.final_status, observer.error) == (CLIENT_CLOSED_REQUEST, False)
        elif started:
            assert observer.final_status == status
            assert observer.error is (raised is not None)
        else:
            assert (observer.final_status, observer.error) == (NO_RESPONSE_STATUS, True)

    asyncio.run(scenario())
