"""The fake OpenAI upstream as a raw ASGI app: routes, validation, errors and options."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from asgi_kit.testing import make_scope, run_lifespan
from asgi_kit.testing.fake_upstream import FakeOpenAI


async def call(fake: FakeOpenAI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        return await client.request(method, path, **kwargs)


CHAT = {"model": "fake-gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/v1/nowhere", None, 404, "unknown_url"),
        ("POST", "/v1/chat/completions", b"{bad", 400, None),
        ("POST", "/v1/chat/completions", b"[1]", 400, None),
        ("POST", "/v1/chat/completions", b'{"messages": [{"role": "user"}]}', 400, None),
        ("POST", "/v1/embeddings", b'{"model": "fake-embedding", "input": []}', 400, None),
        ("POST", "/v1/embeddings", b"x" * (1 << 21), 413, None),
        ("GET", "/v1/models/nope", None, 404, "model_not_found"),
    ],
)
async def test_errors_use_the_api_error_shape(
    method: str, path: str, body: bytes | None, status: int, code: str | None
) -> None:
    """Bad routes, bodies and models answer with {"error": {...}} and an x-request-id."""
    response = await call(FakeOpenAI(), method, path, content=body)
    assert response.status_code == status and response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"] == "invalid_request_error"


async def test_fixed_reply_content_parts_and_usage() -> None:
    """A fixed reply, list-of-parts content and word-count usage."""
    fake = FakeOpenAI(reply="one two three")
    messages = [{"role": "user", "content": [{"type": "text", "text": "a b"}, {"type": "image_url"}]}]
    body = (await call(fake, "POST", "/v1/chat/completions", json={**CHAT, "messages": messages})).json()
    assert body["choices"][0]["message"]["content"] == "one two three"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert fake.requests[-1].path == "/v1/chat/completions"


async def test_stream_with_token_delay() -> None:
    """token_delay spaces the streamed chunks; the stream ends with [DONE]."""
    fake = FakeOpenAI(token_delay=0.001)
    response = await call(fake, "POST", "/v1/chat/completions", json={**CHAT, "stream": True})
    frames = [line for line in response.text.split("\n\n") if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert frames[-1] == "data: [DONE]" and len(frames) == 5  # role, "Echo: ", "hi", finish, [DONE]


async def test_lifespan_and_other_scopes() -> None:
    """Lifespan completes; websocket scopes are ignored."""
    fake = FakeOpenAI()
    sent = await run_lifespan(fake)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    await asyncio.wait_for(fake(make_scope(type="websocket"), _never, _never), 1)


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"models": ()}, "models"),
        ({"token_delay": -1}, "token_delay"),
        ({"embedding_dimensions": 0}, "embedding"),
    ],
)
def test_validation(options: dict[str, Any], name: str) -> None:
    """Bad options raise at construction, naming the option."""
    with pytest.raises(ValueError, match=name):
        FakeOpenAI(**options)


def test_repr() -> None:
    """The repr shows the configuration but not the key."""
    assert repr(FakeOpenAI(api_key="sk-x")) == (
        "FakeOpenAI(models=('fake-gpt-4o-mini', 'fake-embedding'), token_delay=0.0, auth=True)"
    )
