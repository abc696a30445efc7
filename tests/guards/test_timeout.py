"""TimeoutMiddleware: 504 before the first byte, never cuts a started response."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from typing import Any

import httpx
import pytest

from asgi_kit._asgi.context import request_id_var
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.guards import TimeoutMiddleware
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope
from tests.harness.servers import SERVERS, serve

GENEROUS = 5.0  # the machine is shared: upper bounds are loose, lower bounds exact


class TestTimeoutContract(MiddlewareContract):
    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        options.setdefault("timeout", 10)
        return TimeoutMiddleware(app, **options)


def hanging_app(cancelled: list[str] | None = None) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # servers carry on without lifespan support
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if cancelled is not None:
                cancelled.append(scope["path"])
            raise

    return app


async def test_slow_app_gets_504_problem_and_is_cancelled() -> None:
    """An app that has not started its response in time is cancelled and the client gets a 504 problem."""
    cancelled: list[str] = []
    layer = TimeoutMiddleware(hanging_app(cancelled), timeout=0.05)
    send = await call_app(layer, make_scope("/slow", state={"request_id": "rid-1"}))
    assert send.status == 504
    assert send.header("content-type") == "application/problem+json"
    body = send.json()
    assert body["status"] == 504 and body["title"] == "Gateway Timeout" and body["request_id"] == "rid-1"
    assert cancelled == ["/slow"]


async def test_started_response_is_not_cut() -> None:
    """Once the response started, the app may stream past the timeout."""
    gate = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await gate.wait()
        await send({"type": "http.response.body", "body": b"b"})

    send = RecordingSend()
    task = asyncio.ensure_future(TimeoutMiddleware(app, timeout=0.05)(make_scope(), StrictReceive(), send))
    await send.wait_for(lambda s: s.body_chunks == [b"a"])
    await asyncio.sleep(0.2)  # well past the timeout, inside the event loop (not time.sleep)
    gate.set()
    await asyncio.wait_for(task, GENEROUS)
    assert send.status == 200 and send.body == b"ab"


async def test_app_that_swallows_cancellation_still_gets_504() -> None:
    """An app that catches the cancellation and returns without answering still yields a 504."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return

    send = await call_app(TimeoutMiddleware(app, timeout=0.05))
    assert send.status == 504


async def test_late_answer_after_timeout_is_dropped() -> None:
    """An app that catches the cancellation and answers anyway is dropped: the 504 already went out."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"late"})

    send = await call_app(TimeoutMiddleware(app, timeout=0.05))
    assert send.status == 504
    assert [m["type"] for m in send.messages] == ["http.response.start", "http.response.body"]


async def test_error_while_unwinding_still_completes_the_504() -> None:
    """An app that raises another error on cancellation: the 504 completes and the error propagates."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    send = RecordingSend()
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await TimeoutMiddleware(app, timeout=0.05)(make_scope(), StrictReceive(), send)
    assert send.status == 504 and send.complete


async def test_504_goes_out_before_slow_cleanup_finishes() -> None:
    """The 504 is sent when the time is up, not when the app has finished its cleanup."""
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()  # slow cleanup, uninterruptible from the layer's point of view

    send = RecordingSend()
    task = asyncio.ensure_future(TimeoutMiddleware(app, timeout=0.05)(make_scope(), StrictReceive(), send))
    await send.wait_for(lambda s: s.complete, timeout=GENEROUS)
    assert send.status == 504 and not task.done()
    release.set()
    await asyncio.wait_for(task, GENEROUS)


async def test_outer_cancellation_after_timeout_propagates() -> None:
    """A cancellation from outside that arrives while the app unwinds from the timeout still propagates."""
    unwinding = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            unwinding.set()
            await asyncio.Event().wait()  # the outer cancel lands here

    send = RecordingSend()
    task = asyncio.ensure_future(TimeoutMiddleware(app, timeout=0.05)(make_scope(), StrictReceive(), send))
    await asyncio.wait_for(unwinding.wait(), GENEROUS)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_apps_own_timeout_error_propagates() -> None:
    """A TimeoutError raised by the app itself is not turned into a 504."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise TimeoutError("upstream")

    send = RecordingSend()
    with pytest.raises(TimeoutError, match="upstream"):
        await TimeoutMiddleware(app, timeout=5)(make_scope(), StrictReceive(), send)
    assert send.start is None


async def test_outer_cancellation_is_not_a_504() -> None:
    """Cancelling the request from outside while the timer runs propagates CancelledError, no response."""
    started = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.Event().wait()

    send = RecordingSend()
    task = asyncio.ensure_future(TimeoutMiddleware(app, timeout=0.2)(make_scope(), StrictReceive(), send))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert send.messages == []


async def test_contextvars_flow_in_and_out_of_the_app() -> None:
    """The app runs in the caller's task: it sees the caller's contextvars and the caller sees what it set."""
    seen: list[str | None] = []
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(request_id_var.get())
        marker.set("set-by-app")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    token = request_id_var.set("rid-ctx")
    try:
        await call_app(TimeoutMiddleware(app, timeout=5))
    finally:
        request_id_var.reset(token)
    assert seen == ["rid-ctx"]
    assert marker.get() == "set-by-app"


async def test_outside_a_task_the_app_runs_untimed() -> None:
    """A request driven by hand from a loop callback (no task to cancel) is passed through untimed."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    send = RecordingSend()
    coro = TimeoutMiddleware(app, timeout=0.01)(make_scope(), StrictReceive(), send)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def drive() -> None:
        assert asyncio.current_task() is None
        try:
            coro.send(None)
        except StopIteration:
            done.set_result(None)

    asyncio.get_running_loop().call_soon(drive)
    await asyncio.wait_for(done, 5)
    assert send.status == 200 and send.body == b"ok"


async def test_timeout_is_logged_with_request_id(caplog: pytest.LogCaptureFixture) -> None:
    """Every timeout logs one warning on asgi_kit.guards carrying the request id."""
    with caplog.at_level(logging.WARNING, logger="asgi_kit.guards"):
        await call_app(
            TimeoutMiddleware(hanging_app(), timeout=0.01), make_scope(state={"request_id": "rid-9"})
        )
    records = [r for r in caplog.records if r.name == "asgi_kit.guards"]
    assert len(records) == 1
    assert records[0].request_id == "rid-9"  # type: ignore[attr-defined]


async def test_head_timeout_has_no_body() -> None:
    """A HEAD request that times out gets the 504 headers without a body."""
    send = await call_app(TimeoutMiddleware(hanging_app(), timeout=0.01), make_scope(method="HEAD"))
    assert send.status == 504 and send.body == b""


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        ("1", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_bad_timeout_fails_at_construction(value: Any, error: type[Exception]) -> None:
    """A timeout that is not a finite positive number is refused when the layer is built, naming the option."""
    with pytest.raises(error, match="timeout"):
        TimeoutMiddleware(hanging_app(), timeout=value)


def test_repr_shows_options() -> None:
    """The repr names the timeout and the excluded paths."""
    assert repr(TimeoutMiddleware(hanging_app(), timeout=2, exclude_paths=["/x"])) == (
        "TimeoutMiddleware(timeout=2.0, exclude_paths=PathFilter(['/x']))"
    )


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_slow_handler_gets_504_in_time(server: str) -> None:
    """Over real HTTP (uvicorn, hypercorn), a handler that never answers gets a 504 problem near the timeout."""
    timeout = 0.5
    cancelled: list[str] = []
    with serve(TimeoutMiddleware(hanging_app(cancelled), timeout=timeout), server, lifespan="off") as served:
        began = time.perf_counter()
        response = httpx.get(served.url + "/slow", timeout=30)
        elapsed = time.perf_counter() - began
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Gateway Timeout"
    assert timeout * 0.9 <= elapsed < timeout + GENEROUS
    assert cancelled == ["/slow"]


@pytest.mark.integration
def test_sync_handler_in_a_thread_gets_504_in_time() -> None:
    """Over real HTTP, a FastAPI sync handler blocked in a thread cannot be interrupted, yet the 504 is on time."""
    from fastapi import FastAPI

    release = threading.Event()
    api = FastAPI()

    @api.get("/blocking")
    def blocking() -> dict[str, bool]:
        return {"released": release.wait(30)}

    timeout = 0.5
    try:
        with serve(TimeoutMiddleware(api, timeout=timeout), "uvicorn", lifespan="off") as served:
            began = time.perf_counter()
            response = httpx.get(served.url + "/blocking", timeout=30)
            elapsed = time.perf_counter() - began
            release.set()
    finally:
        release.set()
    assert response.status_code == 504
    assert timeout * 0.9 <= elapsed < timeout + GENEROUS


@pytest.mark.integration
def test_streaming_passes_the_timeout_under_uvicorn() -> None:
    """Over real HTTP, a stream whose first byte is in time runs past the timeout to its end."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for i in range(4):
            await send({"type": "http.response.body", "body": f"{i}\n".encode(), "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b""})

    with serve(TimeoutMiddleware(app, timeout=0.15), "uvicorn", lifespan="off") as served:
        response = httpx.get(served.url + "/stream", timeout=30)
    assert response.status_code == 200
    assert response.text == "0\n1\n2\n3\n"
