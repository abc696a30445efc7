"""OpenAIClient against scripted misbehaving upstreams: every failure is a typed error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from asgi_kit.httpclient import (
    APIConnectionError,
    APIReportedError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    OpenAIClient,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    VirtualClock,
)
from tests.httpclient.conftest import Handler, ScriptedServer, hang, reply

USER = [{"role": "user", "content": "hi"}]
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
}
CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def as_json(status: int, payload: Any, **headers: str) -> Handler:
    return reply(status, json.dumps(payload), {"Content-Type": "application/json", **headers})


def error_body(
    code: str | None, message: str = "nope", type_: str = "invalid_request_error"
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def sse(*frames: bytes, content_type: str = "text/event-stream") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type, "x-request-id": "req_stream"})
        await response.prepare(request)
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response

    return handler


def chunk_frame(text: str) -> bytes:
    payload = {**CHUNK, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def api(upstream: ScriptedServer, **options: Any) -> OpenAIClient:
    return OpenAIClient(upstream.url + "/v1", "sk-secret", clock=VirtualClock(), **options)


async def complete(upstream: ScriptedServer, **options: Any) -> Any:
    async with api(upstream, **options) as client:
        return await client.chat_completion(model="m", messages=USER)


async def stream_text(upstream: ScriptedServer) -> str:
    async with api(upstream) as client:
        return "".join([c.text async for c in client.chat_completion_stream(model="m", messages=USER)])


@pytest.mark.parametrize(
    ("handler", "error", "fragment"),
    [
        (as_json(200, error_body("server_error", "overloaded")), APIReportedError, "overloaded"),
        (as_json(200, {"error": "plain string error"}), APIReportedError, "plain string"),
        (
            as_json(200, {k: v for k, v in COMPLETION.items() if k != "choices"}),
            APIResponseValidationError,
            "choices",
        ),
        (as_json(200, {**COMPLETION, "choices": []}), APIResponseValidationError, "ChatCompletion"),
        (as_json(200, [1, 2]), APIResponseValidationError, "ChatCompletion"),
        (reply(200, b"\xff\xfe not utf-8"), APIResponseValidationError, "UTF-8"),
        (
            reply(200, "<html>gateway</html>", {"Content-Type": "text/html"}),
            APIResponseValidationError,
            "not JSON",
        ),
    ],
)
async def test_malformed_success_bodies_are_typed_errors(
    upstream: ScriptedServer, handler: Handler, error: type[Exception], fragment: str
) -> None:
    """A 200 with an error object, without choices, not JSON or not UTF-8: typed errors, never KeyError."""
    upstream.script("/v1/chat/completions", handler)
    with pytest.raises(error, match=fragment):
        await complete(upstream)


async def test_html_502_is_retried_then_an_internal_server_error(upstream: ScriptedServer) -> None:
    """An HTML 502 from a proxy is retried (same idempotency key), then InternalServerError with the HTML body."""
    upstream.script("/v1/chat/completions", reply(502, "<html><body>Bad Gateway</body></html>"))
    with pytest.raises(InternalServerError) as info:
        await complete(upstream)
    hits = upstream.hits("/v1/chat/completions")
    assert len(hits) == 3 and len({h.headers["Idempotency-Key"] for h in hits}) == 1
    assert info.value.status_code == 502 and "Bad Gateway" in info.value.body


async def test_rate_limit_then_success(upstream: ScriptedServer) -> None:
    """A plain 429 with retry-after-ms is waited out and retried."""
    upstream.script(
        "/v1/chat/completions",
        as_json(429, error_body("rate_limit_exceeded"), **{"retry-after-ms": "250"}),
        as_json(200, COMPLETION),
    )
    assert (await complete(upstream)).text == "ok"
    assert len(upstream.hits("/v1/chat/completions")) == 2


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(429, "insufficient_quota", RateLimitError), (400, "context_length_exceeded", BadRequestError)],
)
async def test_quota_and_context_length_are_not_retried(
    upstream: ScriptedServer, status: int, code: str, error: type[APIStatusError]
) -> None:
    """insufficient_quota and context_length_exceeded are answers: one attempt, even if the server says retry."""
    upstream.script(
        "/v1/chat/completions",
        as_json(status, error_body(code), **{"x-request-id": "req_q", "x-should-retry": "true"}),
    )
    with pytest.raises(error) as info:
        await complete(upstream)
    assert info.value.code == code and info.value.request_id == "req_q"
    assert len(upstream.hits("/v1/chat/completions")) == 1


async def test_retry_after_over_the_cap_is_a_rate_limit_error_with_the_wait(upstream: ScriptedServer) -> None:
    """A 429 asking for more than max_retry_after fails at once, carrying the wait."""
    upstream.script(
        "/v1/chat/completions", as_json(429, error_body("rate_limit_exceeded"), **{"Retry-After": "3600"})
    )
    with pytest.raises(RateLimitError) as info:
        await complete(upstream, max_retry_after=10.0)
    assert info.value.retry_after == 3600.0


@pytest.mark.parametrize(
    ("status", "error"),
    [(403, PermissionDeniedError), (422, UnprocessableEntityError), (418, APIStatusError)],
)
async def test_status_mapping(upstream: ScriptedServer, status: int, error: type[APIStatusError]) -> None:
    """Each error status maps to its exception class; unknown ones to APIStatusError."""
    upstream.script("/v1/models", as_json(status, error_body(None)))
    async with api(upstream) as client:
        with pytest.raises(error) as info:
            await client.list_models()
    assert type(info.value) is error and info.value.status_code == status


async def test_without_idempotency_keys_posts_are_not_retried(upstream: ScriptedServer) -> None:
    """idempotency_keys=False: a POST that got a 503 is not retried."""
    upstream.script("/v1/chat/completions", reply(503))
    with pytest.raises(InternalServerError):
        await complete(upstream, idempotency_keys=False)
    assert len(upstream.hits("/v1/chat/completions")) == 1
    assert "Idempotency-Key" not in upstream.hits("/v1/chat/completions")[0].headers


async def test_connection_refused_and_timeout_are_wrapped(
    upstream: ScriptedServer, closed_port_url: str
) -> None:
    """Refused connections are APIConnectionError; a silent upstream is APITimeoutError."""
    async with OpenAIClient(closed_port_url + "/v1", "k", clock=VirtualClock()) as client:
        with pytest.raises(APIConnectionError):
            await client.list_models()
    upstream.script("/v1/models", hang())
    async with api(upstream, timeout=0.2, max_retries=0) as client:
        with pytest.raises(APITimeoutError):
            await client.list_models()


async def test_stream_happy_path_with_keepalive_comments(upstream: ScriptedServer) -> None:
    """Comments and CRLF line endings are fine; [DONE] ends the stream."""
    upstream.script(
        "/v1/chat/completions",
        sse(
            b": keep-alive\r\n\r\n",
            chunk_frame("Hel").replace(b"\n", b"\r\n"),
            chunk_frame("lo"),
            b"data: [DONE]\n\n",
        ),
    )
    assert await stream_text(upstream) == "Hello"


@pytest.mark.parametrize(
    ("frames", "error", "fragment"),
    [
        (
            (
                chunk_frame("a"),
                b"event: error\ndata: " + json.dumps(error_body("boom", "exploded")).encode() + b"\n\n",
            ),
            APIReportedError,
            "exploded",
        ),
        (
            (chunk_frame("a"), b"data: " + json.dumps(error_body("x", "in data")).encode() + b"\n\n"),
            APIReportedError,
            "in data",
        ),
        ((chunk_frame("a"), chunk_frame("b")), IncompleteStreamError, r"\[DONE\]"),
        ((b"data: {not json}\n\n",), APIResponseValidationError, "not JSON"),
        ((b'data: {"id": 1}\n\n',), APIResponseValidationError, "ChatCompletionChunk"),
        ((b"data: \xff\xfe\n\n",), APIResponseValidationError, "UTF-8"),
    ],
)
async def test_stream_failures_are_typed(
    upstream: ScriptedServer, frames: tuple[bytes, ...], error: type[Exception], fragment: str
) -> None:
    """In-stream error events, a missing [DONE], bad JSON or bytes: typed errors."""
    upstream.script("/v1/chat/completions", sse(*frames))
    with pytest.raises(error, match=fragment) as info:
        await stream_text(upstream)
    assert getattr(info.value, "request_id", None) == "req_stream"


async def test_stream_broken_mid_way_is_a_connection_error(upstream: ScriptedServer) -> None:
    """A transport failure mid-stream is APIConnectionError, never an aiohttp exception."""

    async def dies(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(chunk_frame("a"))
        assert request.transport is not None
        request.transport.close()
        return response

    upstream.script("/v1/chat/completions", dies)
    with pytest.raises(APIConnectionError):
        await stream_text(upstream)


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (as_json(200, error_body("server_error")), APIReportedError),
        (as_json(200, COMPLETION), APIResponseValidationError),
        (as_json(400, error_body("context_length_exceeded")), BadRequestError),
    ],
)
async def test_stream_that_is_not_an_event_stream(
    upstream: ScriptedServer, handler: Handler, error: type[Exception]
) -> None:
    """A JSON answer to a stream request: its error, or a validation error if it is not one."""
    upstream.script("/v1/chat/completions", handler)
    with pytest.raises(error):
        await stream_text(upstream)


async def test_stream_retried_before_it_starts(upstream: ScriptedServer) -> None:
    """A 503 before the stream starts is retried; the stream then runs."""
    upstream.script("/v1/chat/completions", reply(503), sse(chunk_frame("x"), b"data: [DONE]\n\n"))
    assert await stream_text(upstream) == "x"
    assert len(upstream.hits("/v1/chat/completions")) == 2


async def test_per_call_key_timeout_and_deadline(upstream: ScriptedServer) -> None:
    """A caller's idempotency key is sent on every attempt; per-call timeout and deadline apply."""
    upstream.script("/v1/chat/completions", reply(503), as_json(200, COMPLETION))
    upstream.script("/v1/embeddings", hang())
    async with api(upstream) as client:
        await client.chat_completion(model="m", messages=USER, idempotency_key="mine", deadline=30.0)
        with pytest.raises(APITimeoutError):
            await client.embeddings(model="e", input="x", timeout=0.1, deadline=0.3)
    assert [h.headers["Idempotency-Key"] for h in upstream.hits("/v1/chat/completions")] == ["mine", "mine"]
