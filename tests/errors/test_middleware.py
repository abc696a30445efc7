"""ProblemDetailsMiddleware: exceptions become problems, nothing leaks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import NOT_FOUND, ProblemDetailsMiddleware, ProblemError
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope
from tests.harness.apps import BOOM_MESSAGE, bare_app


class TestProblemDetailsContract(MiddlewareContract):
    supports_exclude_paths = False
    renders_errors = True

    def make(self, app: ASGIApp, **options: object) -> ASGIApp:
        return ProblemDetailsMiddleware(app, **options)  # type: ignore[arg-type]


async def test_unhandled_exception_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A 500 body holds no exception text, class name, path or DSN; the error is logged once."""
    app = ProblemDetailsMiddleware(bare_app(), reraise=False)
    scope = make_scope("/boom", state={"request_id": "rid-7"})
    with caplog.at_level(logging.ERROR, logger="asgi_kit.errors"):
        send = await call_app(app, scope)
    assert send.status == 500
    text = send.body.decode()
    for leak in ["s3cr3t", "postgresql://", "RuntimeError", "boom", ".py", "Traceback"]:
        assert leak not in text
    body = send.json()
    assert body["request_id"] == "rid-7"
    assert body["title"] == "Internal Server Error"
    assert len([r for r in caplog.records if r.name == "asgi_kit.errors"]) == 1


async def test_reraise_by_default() -> None:
    """By default the exception is re-raised after the 500 went out."""
    send = RecordingSend()
    with pytest.raises(RuntimeError, match="boom"):
        await ProblemDetailsMiddleware(bare_app())(make_scope("/boom"), StrictReceive(), send)
    assert send.status == 500


async def test_debug_shows_exception() -> None:
    """debug=True adds the exception type, message and traceback."""
    send = await call_app(ProblemDetailsMiddleware(bare_app(), debug=True, reraise=False), path="/boom")
    body = send.json()
    assert body["exception"] == "RuntimeError"
    assert BOOM_MESSAGE in body["exception_message"]
    assert body["traceback"]


async def test_problem_error_becomes_its_problem() -> None:
    """A ProblemError renders as its problem with its headers, and is not re-raised."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ProblemError(NOT_FOUND.with_detail("no such item"), {"x-hint": "1"})

    send = await call_app(ProblemDetailsMiddleware(app))
    assert send.status == 404
    assert send.json()["detail"] == "no such item"
    assert send.header("x-hint") == "1"


async def test_problem_error_after_start_is_reraised(caplog: pytest.LogCaptureFixture) -> None:
    """A ProblemError after the response started cannot be rendered: logged and re-raised."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ProblemError(NOT_FOUND)

    send = RecordingSend()
    with caplog.at_level(logging.ERROR), pytest.raises(ProblemError):
        await ProblemDetailsMiddleware(app)(make_scope(), StrictReceive(), send)
    assert [m["type"] for m in send.messages] == ["http.response.start"]
    assert "after the response started" in caplog.text


async def test_head_request_gets_no_body() -> None:
    """HEAD /boom gets a 500 with headers only."""
    send = await call_app(ProblemDetailsMiddleware(bare_app(), reraise=False), path="/boom", method="HEAD")
    assert send.status == 500 and send.body == b""


async def test_cancelled_error_is_not_a_500() -> None:
    """CancelledError propagates untouched, with no response."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError

    send = RecordingSend()
    with pytest.raises(asyncio.CancelledError):
        await ProblemDetailsMiddleware(app)(make_scope(), StrictReceive(), send)
    assert send.messages == []


@pytest.mark.parametrize(("option", "value"), [("debug", "yes"), ("reraise", 1)])
def test_bad_options_fail_at_construction(option: str, value: object) -> None:
    """Options are type-checked at construction, naming the option."""
    with pytest.raises(TypeError, match=option):
        ProblemDetailsMiddleware(bare_app(), **{option: value})  # type: ignore[arg-type]


async def test_exception_after_complete_response_is_swallowed_without_reraise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With reraise=False, an exception after a complete response is logged, not propagated."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"framework 500"})
        raise RuntimeError("re-raised for the server log")

    with caplog.at_level(logging.ERROR):
        send = await call_app(ProblemDetailsMiddleware(app, reraise=False))
    assert send.status == 500 and send.body == b"framework 500"
    assert "after the response started" in caplog.text
    with pytest.raises(RuntimeError):
        await call_app(ProblemDetailsMiddleware(app))
