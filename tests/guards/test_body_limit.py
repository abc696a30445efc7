"""BodyLimitMiddleware: 413 while the body streams, 400 for a malformed Content-Length."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Request as FastAPIRequest  # module level: FastAPI resolves string annotations here
from hypothesis import given
from hypothesis import strategies as st
from litestar import Request as LitestarRequest

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import BodyLimitMiddleware, BodyTooLargeError
from asgi_kit.guards.body_limit import MAX_CONTENT_LENGTH, parse_content_length
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, make_scope
from tests.harness.servers import SERVERS, serve

MB = 1024 * 1024


class TestBodyLimitContract(MiddlewareContract):
    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        options.setdefault("max_body_size", 1024)
        return BodyLimitMiddleware(app, **options)


class CountingApp:
    """Reads the whole body chunk by chunk, counting what it got, then answers 200."""

    def __init__(self) -> None:
        self.received = 0
        self.called = False
        self.error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.called = True
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                self.received += len(message.get("body", b""))
                more = message.get("more_body", False)
        except Exception as exc:
            self.error = exc
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.received).encode()})


async def run(
    layer: ASGIApp, chunks: list[bytes], headers: list[tuple[str, str | bytes]] | None = None
) -> RecordingSend:
    send = RecordingSend()
    await layer(make_scope("/upload", method="POST", headers=headers or []), StrictReceive(chunks), send)
    return send


async def test_body_within_limit_reaches_app() -> None:
    """A body at exactly the limit reaches the app whole."""
    app = CountingApp()
    send = await run(BodyLimitMiddleware(app, max_body_size=10), [b"12345", b"67890"])
    assert (send.status, send.body) == (200, b"10")


async def test_streamed_body_over_limit_gets_413_and_app_never_sees_the_excess() -> None:
    """Without Content-Length, the chunk crossing the limit is withheld and the client gets a 413 problem."""
    app = CountingApp()
    receive = StrictReceive([b"x" * 4] * 10)
    send = RecordingSend()
    await BodyLimitMiddleware(app, max_body_size=10)(make_scope("/u", method="POST"), receive, send)
    assert send.status == 413
    assert send.header("content-type") == "application/problem+json"
    assert send.json()["max_body_size"] == 10
    assert app.received == 8
    assert isinstance(app.error, BodyTooLargeError)
    assert receive.calls == 3  # nothing read from the server after the chunk that crossed the limit


async def test_content_length_over_limit_is_refused_without_calling_app() -> None:
    """A declared Content-Length over the limit gets a 413 before the app runs or the body is read."""
    app = CountingApp()
    receive = StrictReceive([b"x" * 100])
    send = RecordingSend()
    scope = make_scope(
        "/u", method="POST", headers=[("content-length", "100")], state={"request_id": "rid-4"}
    )
    await BodyLimitMiddleware(app, max_body_size=10)(scope, receive, send)
    assert send.status == 413 and send.json()["request_id"] == "rid-4"
    assert not app.called and receive.calls == 0


async def test_receive_after_limit_keeps_raising_without_reading() -> None:
    """An app that keeps calling receive after the limit gets the error again and reads nothing more."""
    errors: list[BaseException] = []

    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in range(3):
            try:
                await receive()
            except BodyTooLargeError as exc:
                errors.append(exc)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ignored"})

    receive = StrictReceive([b"x" * 20, b"y"])
    send = RecordingSend()
    await BodyLimitMiddleware(stubborn, max_body_size=10)(make_scope(method="POST"), receive, send)
    assert len(errors) == 3 and receive.calls == 1
    assert send.status == 413  # the app's own answer after the cut-off is replaced


async def test_other_exception_after_limit_still_413_then_reraised() -> None:
    """An unrelated error raised after the limit was crossed is answered with the 413 and re-raised."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(BodyTooLargeError):
            await receive()
        raise KeyError("unrelated")

    send = RecordingSend()
    with pytest.raises(KeyError):
        await BodyLimitMiddleware(app, max_body_size=1)(
            make_scope(method="POST"), StrictReceive([b"xx"]), send
        )
    assert send.status == 413


async def test_wrapped_limit_error_is_swallowed() -> None:
    """A framework that re-raises the limit error wrapped in its own exception still gets a clean 413."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await receive()
        except BodyTooLargeError as exc:
            raise ValueError("body could not be read") from exc

    send = await run(BodyLimitMiddleware(app, max_body_size=1), [b"xx"])
    assert send.status == 413


async def test_limit_crossed_after_response_started_propagates() -> None:
    """If the response already started, the app gets the error, it propagates and nothing more is sent."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await receive()

    send = RecordingSend()
    with pytest.raises(BodyTooLargeError):
        await BodyLimitMiddleware(app, max_body_size=3)(
            make_scope(method="POST"), StrictReceive([b"ab", b"cd"]), send
        )
    assert [m["type"] for m in send.messages] == ["http.response.start"]


async def test_problem_details_middleware_renders_escaped_limit_error() -> None:
    """The limit error is a ProblemError, so ProblemDetailsMiddleware renders it as the same 413."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise BodyTooLargeError(5)

    send = RecordingSend()
    await ProblemDetailsMiddleware(app)(make_scope(), StrictReceive(), send)
    assert send.status == 413 and send.json()["max_body_size"] == 5


def body_reading_app(framework: str) -> ASGIApp:
    """A POST /upload route that reads the whole body, under ``framework``."""
    if framework == "starlette":
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def upload(request: Request) -> PlainTextResponse:
            return PlainTextResponse(str(len(await request.body())))

        return Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    if framework == "fastapi":
        from fastapi import FastAPI

        api = FastAPI()

        @api.post("/upload")
        async def upload_fastapi(request: FastAPIRequest) -> int:
            return len(await request.body())

        return api
    from litestar import Litestar, post

    @post("/upload")
    async def upload_litestar(request: LitestarRequest[Any, Any, Any]) -> int:
        return len(await request.body())

    return Litestar(route_handlers=[upload_litestar])  # type: ignore[return-value]


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
async def test_frameworks_own_error_response_is_replaced_by_413(framework: str) -> None:
    """A framework that turns the receive error into its own 500 (or 400) still yields the layer's 413."""
    layer = BodyLimitMiddleware(body_reading_app(framework), max_body_size=4)
    send = await run(layer, [b"abc", b"def"])
    assert send.status == 413
    assert send.header("content-type") == "application/problem+json"
    ok = await run(BodyLimitMiddleware(body_reading_app(framework), max_body_size=6), [b"abc", b"def"])
    assert ok.status in (200, 201) and ok.body.endswith(b"6")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("content-length", "abc")], 400),
        ([("content-length", "-1")], 400),
        ([("content-length", "+5")], 400),
        ([("content-length", "")], 400),
        ([("content-length", "1_0")], 400),
        ([("content-length", "５".encode())], 400),
        ([("content-length", "5"), ("content-length", "6")], 400),
        ([("content-length", "5, 6")], 400),
        ([("content-length", "5"), ("content-length", "5")], 200),
        ([("content-length", "5, 5")], 200),
        ([("content-length", "0005")], 200),
        ([("content-length", "11")], 413),
        ([("content-length", "9" * 5000)], 413),
    ],
)
async def test_content_length_table(headers: list[tuple[str, str | bytes]], status: int) -> None:
    """Malformed or conflicting Content-Length is a 400; identical duplicates are accepted; huge is a 413."""
    app = CountingApp()
    send = await run(BodyLimitMiddleware(app, max_body_size=10), [b"12345"], headers)
    assert send.status == status
    assert app.called is (status == 200)
    if status != 200:
        assert send.header("content-type") == "application/problem+json"


@given(st.lists(st.binary(max_size=30), max_size=4), st.integers(min_value=1, max_value=10**6))
async def test_any_content_length_is_400_413_or_passed_on(values: list[bytes], limit: int) -> None:
    """Whatever Content-Length values arrive, the layer answers 400 or 413, or calls the app only within the limit."""
    app = CountingApp()
    send = RecordingSend()
    scope = make_scope("/u", method="POST", headers=[(b"content-length", v) for v in values])
    await BodyLimitMiddleware(app, max_body_size=limit)(scope, StrictReceive([b""]), send)
    assert send.status in (200, 400, 413)
    if app.called:
        assert send.status == 200
        declared = [int(m) for v in values for m in v.split(b",") if m.strip(b" \t")]
        assert all(d <= limit for d in declared)


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-5, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError)],
)
def test_bad_max_body_size_fails_at_construction(value: Any, error: type[Exception]) -> None:
    """A max_body_size that is not a positive int is refused when the layer is built, naming the option."""
    with pytest.raises(error, match="max_body_size"):
        BodyLimitMiddleware(CountingApp(), max_body_size=value)


def test_repr_and_saturation_constant() -> None:
    """The repr names the limit; the saturation bound is the largest signed 64-bit value."""
    assert repr(BodyLimitMiddleware(CountingApp(), max_body_size=7)).startswith(
        "BodyLimitMiddleware(max_body_size=7"
    )
    assert MAX_CONTENT_LENGTH == 2**63 - 1


def ten_megabytes() -> Iterator[bytes]:
    chunk = b"z" * (64 * 1024)
    for _ in range(160):
        yield chunk


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_chunked_10mb_upload_gets_413_after_reading_at_most_1mb(server: str) -> None:
    """Over real HTTP, a 10 MB chunked upload against a 1 MB limit gets a 413; the app read at most 1 MB."""
    app = CountingApp()
    with serve(BodyLimitMiddleware(app, max_body_size=MB), server, lifespan="off") as served:
        with httpx.Client(timeout=30) as client:
            response = client.post(served.url + "/upload", content=ten_megabytes())
    assert response.status_code == 413
    assert response.json()["title"] == "Payload Too Large"
    assert app.called and 0 < app.received <= MB


@pytest.mark.integration
def test_content_length_over_limit_under_uvicorn() -> None:
    """Over real HTTP, a declared 2 MB body against a 1 MB limit gets a 413 and the app is never called."""
    app = CountingApp()
    with serve(BodyLimitMiddleware(app, max_body_size=MB), "uvicorn", lifespan="off") as served:
        response = httpx.post(served.url + "/upload", content=b"q" * (2 * MB), timeout=30)
    assert response.status_code == 413
    assert not app.called


@pytest.mark.integration
def test_small_upload_passes_under_uvicorn() -> None:
    """Over real HTTP, a chunked upload under the limit reaches the app whole."""
    app = CountingApp()

    def small() -> Iterator[bytes]:
        yield b"a" * 1000
        yield b"b" * 1000

    with serve(BodyLimitMiddleware(app, max_body_size=MB), "uvicorn", lifespan="off") as served:
        response = httpx.post(served.url + "/upload", content=small(), timeout=30)
    assert (response.status_code, response.text) == (200, "2000")


async def test_cancelled_upload_is_not_answered() -> None:
    """Cancelling the request while the app waits for body propagates without a response."""
    app = CountingApp()
    receive = StrictReceive([b"a"] * 1)
    send = RecordingSend()

    async def blocking_receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    task = asyncio.ensure_future(
        BodyLimitMiddleware(app, max_body_size=5)(make_scope(method="POST"), blocking_receive, send)
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert send.messages == [] and receive.calls == 0


@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=5), st.integers(1, 3))
def test_parse_content_length_round_trips_numbers(number: int, zeros: int, copies: int) -> None:
    """Any decimal number, with leading zeros and identical duplicates, parses to itself (saturated at 2**63-1)."""
    value = b"0" * zeros + str(number).encode()
    assert parse_content_length([value] * copies) == min(number, MAX_CONTENT_LENGTH)
    assert parse_content_length([b", ".join([value] * copies)]) == min(number, MAX_CONTENT_LENGTH)


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
def test_parse_content_length_accepts_only_digits(values: list[bytes]) -> None:
    """Arbitrary bytes either parse to a non-negative length made only of ASCII digits, or raise ValueError."""
    try:
        result = parse_content_length(values)
    except ValueError:
        return
    assert result is not None and 0 <= result <= MAX_CONTENT_LENGTH
    members = [m.strip(b" \t") for v in values for m in v.split(b",")]
    assert all(m and m.isdigit() and m.isascii() for m in members)
    assert len({int(m) for m in members}) == 1


def test_parse_content_length_absent() -> None:
    """No Content-Length header at all is None, not zero."""
    assert parse_content_length([]) is None


def test_different_huge_values_conflict() -> None:
    """Two different values both above the saturation bound still conflict (400), not merge."""
    with pytest.raises(ValueError, match="conflicting"):
        parse_content_length([b"99999999999999999999", b"99999999999999999998"])


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_expect_100_continue_is_refused_before_upload(server: str) -> None:
    """Over a raw socket, Expect: 100-continue with a too-large length gets a 413 without uploading.

    uvicorn sends 100 Continue only when the app first reads, so the client never sees it;
    hypercorn sends it by itself before the app runs, then the 413 follows.
    """
    import socket

    app = CountingApp()
    with serve(BodyLimitMiddleware(app, max_body_size=MB), server, lifespan="off") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(
                b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5000000\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            reply = b""
            while b"HTTP/1.1 413" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    assert b"HTTP/1.1 413" in reply, reply[:200]
    if server == "uvicorn":
        assert reply.startswith(b"HTTP/1.1 413")
    assert not app.called
