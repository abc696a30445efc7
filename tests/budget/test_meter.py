"""MeteredCall: every upstream call settled exactly once, whichever way the handler leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asgi_kit._asgi.observer import CLIENT_CLOSED_REQUEST, ResponseObserver
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.budget import ClientDisconnected, UsageLedger
from asgi_kit.testing import RecordingSend, StrictReceive, make_scope
from tests.budget.ledger_helpers import ListSink, UpstreamError, upstream

PROMPT_ESTIMATE = 7


class Reservation:
    def __init__(self, fail: bool = False) -> None:
        self.settled: list[int] = []
        self.fail = fail

    def settle(self, tokens: int) -> None:
        self.settled.append(tokens)
        if self.fail:
            raise RuntimeError("reservation store broken")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[UsageLedger]:
    ledger = UsageLedger(ListSink(), spool_path=tmp_path, max_delay=0.01, drain_timeout=2.0)
    await ledger.start()
    yield ledger
    await ledger.close()


def sink_of(ledger: UsageLedger) -> ListSink:
    sink = ledger._sink
    assert isinstance(sink, ListSink)
    return sink


async def settled(ledger: UsageLedger, request_id: str, timeout: float = 3.0) -> tuple[int, int, bool]:
    """The (prompt, completion, estimated) the sink received for ``request_id``."""
    sink = sink_of(ledger)
    async with asyncio.timeout(timeout):
        while request_id not in sink.records:
            await asyncio.sleep(0.005)
    record = sink.records[request_id]
    return record.prompt_tokens, record.completion_tokens, record.estimated


def meter(ledger: UsageLedger, request_id: str, reservation: Reservation | None = None) -> Any:
    return ledger.meter(
        request_id=request_id,
        org_id="org",
        model="m",
        user_id="u",
        api_key_id="k",
        prompt_estimate=PROMPT_ESTIMATE,
        reservation=reservation,
    )


async def test_stream_to_its_end_records_the_upstream_usage(ledger: UsageLedger) -> None:
    """A stream read to the end settles with the upstream's usage, once, reservation included."""
    reservation = Reservation()
    async with meter(ledger, "a", reservation) as call:
        chunks = [chunk async for chunk in call.stream(upstream(5, prompt=4))]
    assert len(chunks) == 6 and call.settled
    assert await settled(ledger, "a") == (4, 5, False)
    assert reservation.settled == [9]


async def test_explicit_zero_usage_stays_zero(ledger: UsageLedger) -> None:
    """An upstream usage of zero is recorded as zero, not replaced by an estimate."""
    async with meter(ledger, "z") as call:
        async for _ in call.stream(upstream(0, prompt=0)):
            pass
    assert await settled(ledger, "z") == (0, 0, False)
    async with meter(ledger, "zp") as call:
        call.usage(0, 0)
    assert await settled(ledger, "zp") == (0, 0, False)


async def test_plain_call_usage(ledger: UsageLedger) -> None:
    """A plain call records the usage handed to call.usage()."""
    reservation = Reservation()
    async with meter(ledger, "p", reservation) as call:
        call.usage(11, 22)
    assert await settled(ledger, "p") == (11, 22, False)
    assert reservation.settled == [33] and call.total == 33


async def test_plain_call_refused_records_nothing(ledger: UsageLedger) -> None:
    """A plain call whose upstream raised before answering records nothing; the reservation settles to 0."""
    reservation = Reservation()
    with pytest.raises(UpstreamError):
        async with meter(ledger, "refused", reservation) as call:
            raise UpstreamError("503")
    assert call.total == 0 and call.record is None and reservation.settled == [0]


async def test_plain_call_cancelled_in_flight_records_the_prompt_estimate(ledger: UsageLedger) -> None:
    """A plain call cancelled while the upstream works is charged the prompt estimate."""

    async def handler() -> None:
        async with meter(ledger, "pc"):
            await asyncio.sleep(10)

    task = asyncio.create_task(handler())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await settled(ledger, "pc") == (PROMPT_ESTIMATE, 0, True)


async def test_upstream_error_mid_stream_counts_what_was_received(ledger: UsageLedger) -> None:
    """The handler sees the upstream error; the call settles with the prompt estimate plus the
    completion tokens received."""
    reservation = Reservation()
    received = 0
    with pytest.raises(UpstreamError):
        async with meter(ledger, "e", reservation) as call:
            async for _ in call.stream(upstream(10, fail_after=3)):
                received += 1
    assert received == 3
    assert await settled(ledger, "e") == (PROMPT_ESTIMATE, 3, True)
    assert reservation.settled == [PROMPT_ESTIMATE + 3]


async def test_upstream_refusing_a_stream_records_nothing(ledger: UsageLedger) -> None:
    """A stream that fails before its first chunk (an error status) records nothing."""
    with pytest.raises(UpstreamError):
        async with meter(ledger, "sr") as call:
            async for _ in call.stream(upstream(10, fail_after=0)):
                pass
    assert call.total == 0 and call.record is None


async def test_send_oserror_drains_to_the_usage_event(ledger: UsageLedger) -> None:
    """A client gone (send raises OSError) mid-stream: the meter reads on to the usage event."""
    reservation = Reservation()
    log: list[str] = []
    with pytest.raises(OSError, match="gone"):
        async with meter(ledger, "d", reservation) as call:
            async for _ in call.stream(upstream(20, prompt=4, delay=0.002, log=log)):
                raise OSError("client gone")
    assert not call.settled and ledger.stats().draining == 1
    assert await settled(ledger, "d") == (4, 20, False)
    assert reservation.settled == [24] and log == ["closed"]
    assert ledger.stats().drains == 1


async def test_http_disconnect_on_receive_stops_the_handler_and_drains(ledger: UsageLedger) -> None:
    """http.disconnect on receive makes the stream raise ClientDisconnected; usage still arrives."""
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    forwarded = 0
    with pytest.raises(ClientDisconnected):
        async with meter(ledger, "hd") as call:
            async for _ in call.stream(upstream(30, prompt=2, delay=0.002), receive=receive):
                forwarded += 1
                if forwarded == 5:
                    gone.set()
    assert forwarded < 30
    assert await settled(ledger, "hd") == (2, 30, False)


async def test_cancellation_mid_stream_drains(ledger: UsageLedger) -> None:
    """A handler cancelled mid-stream (timeout guard, shutdown) still settles with the usage."""

    async def handler() -> None:
        async with asyncio.timeout(0.02):
            async with meter(ledger, "c") as call:
                async for _ in call.stream(upstream(40, prompt=3, delay=0.002)):
                    pass

    with pytest.raises(TimeoutError):
        await handler()
    assert await settled(ledger, "c") == (3, 40, False)


async def test_drain_past_its_time_counts_what_was_received(tmp_path: Path) -> None:
    """A drain that hits drain_timeout cuts the stream and settles with received + estimate."""
    ledger = UsageLedger(ListSink(), spool_path=tmp_path, max_delay=0.01, drain_timeout=0.05)
    await ledger.start()
    with pytest.raises(OSError):
        async with meter(ledger, "t") as call:
            async for _ in call.stream(upstream(1000, delay=0.005)):
                raise OSError("gone")
    prompt, completion, estimated = await settled(ledger, "t")
    assert prompt == PROMPT_ESTIMATE and 1 <= completion < 1000 and estimated
    assert ledger.stats().drain_timeouts == 1
    await ledger.close()


async def test_no_free_drain_slot_counts_what_was_received(tmp_path: Path) -> None:
    """With max_drains reached, a stream left early is closed at once and settles with what arrived."""
    ledger = UsageLedger(ListSink(), spool_path=tmp_path, max_delay=0.01, max_drains=0)
    await ledger.start()
    log: list[str] = []
    async with meter(ledger, "n") as call:
        async for _ in call.stream(upstream(1000, delay=0.001, log=log)):
            break  # the handler stops reading early without an error
    prompt, completion, estimated = await settled(ledger, "n")
    assert (prompt, estimated) == (PROMPT_ESTIMATE, True) and completion >= 1
    assert ledger.stats().drains_refused == 1 and log == ["closed"]
    await ledger.close()


async def test_close_cuts_running_drains_and_keeps_their_records(tmp_path: Path) -> None:
    """Closing the ledger waits for drains within its timeout, cuts the rest, and records them."""
    sink = ListSink()
    ledger = UsageLedger(sink, spool_path=tmp_path, max_delay=0.01, drain_timeout=30.0)
    await ledger.start()
    with pytest.raises(OSError):
        async with meter(ledger, "x") as call:
            async for _ in call.stream(upstream(10_000, delay=0.01)):
                raise OSError("gone")
    await ledger.close(timeout=0.05)
    assert "x" in sink.records and sink.records["x"].estimated


async def test_broken_reservation_does_not_lose_the_record(ledger: UsageLedger) -> None:
    """A reservation whose settle() raises is logged; the usage is recorded anyway."""
    async with meter(ledger, "br", Reservation(fail=True)) as call:
        call.usage(1, 1)
    assert await settled(ledger, "br") == (1, 1, False)


async def test_stream_without_usage_event_is_estimated(ledger: UsageLedger) -> None:
    """An upstream that ends without a usage chunk settles with prompt estimate + tokens received."""
    async with meter(ledger, "nu") as call:
        async for _ in call.stream(upstream(4, usage=False)):
            pass
    assert await settled(ledger, "nu") == (PROMPT_ESTIMATE, 4, True)


async def test_no_organization_settles_the_reservation_only(ledger: UsageLedger) -> None:
    """A call without an organization records nothing but still settles its reservation."""
    reservation = Reservation()
    async with ledger.meter(request_id="anon", org_id=None, model="m", reservation=reservation) as call:
        call.usage(2, 3)
    assert call.record is None and reservation.settled == [5]


async def test_meter_options(ledger: UsageLedger) -> None:
    """Bad meter arguments raise ValueError/TypeError naming them; one stream per call."""
    with pytest.raises(ValueError, match="request_id"):
        ledger.meter(request_id="", org_id="o", model="m")
    with pytest.raises(ValueError, match="prompt_estimate"):
        ledger.meter(request_id="r", org_id="o", model="m", prompt_estimate=-1)
    with pytest.raises(TypeError, match="reservation"):
        ledger.meter(request_id="r", org_id="o", model="m", reservation=object())  # type: ignore[arg-type]
    async with ledger.meter(request_id="r1", org_id="o", model="m") as call:
        async for _ in call.stream(upstream(1)):
            pass
        with pytest.raises(RuntimeError, match="one stream"):
            call.stream(upstream(1))
    assert "r1" in repr(call)


async def test_client_gone_mid_stream_is_499_and_its_usage_is_still_recorded(ledger: UsageLedger) -> None:
    """Behind the layers' ResponseObserver, the meter's disconnect watch and the access log, the
    metrics and the span agree: the client that left a metered stream is a 499, and the call
    still settles with the upstream's usage."""
    client = StrictReceive()
    sent = RecordingSend()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the request body
        async with meter(ledger, "gone") as call:
            try:
                async for _ in call.stream(upstream(30, prompt=2, delay=0.002), receive=receive):
                    if sent.start is None:
                        await send({"type": "http.response.start", "status": 200, "headers": []})
                    await send({"type": "http.response.body", "body": b"data: x\n\n", "more_body": True})
                    if len(sent.body_chunks) == 5:
                        client.disconnect()
            except ClientDisconnected:
                return
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    observer = ResponseObserver(client, sent)
    await handler(make_scope(), observer.receive, observer.send)
    assert 5 <= len(sent.body_chunks) < 30
    assert (observer.final_status, observer.error) == (CLIENT_CLOSED_REQUEST, False)
    assert await settled(ledger, "gone") == (2, 30, False)
