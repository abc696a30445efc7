"""The official openai client against examples/ratelimit_example.py served by uvicorn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from examples.ratelimit_example import build_app, from_environment
from tests.harness.servers import serve

pytestmark = pytest.mark.integration
WINDOW = 1.5


class StatusLog:
    """Outermost layer recording (time, status) of every response the server sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[float, int, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
                headers["path"] = scope.get("method", "") + " " + scope.get("path", "")
                self.seen.append((time.monotonic(), message["status"], headers))
            await send(message)

        await self.app(scope, receive, record)


@pytest.fixture
def served() -> Iterator[tuple[str, StatusLog]]:
    log = StatusLog(build_app(requests_per_minute=1, window=WINDOW))
    with serve(log) as server:
        yield f"{server.url}/v1", log


def ask(client: openai.OpenAI) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="fake", messages=[{"role": "user", "content": "ping"}], max_tokens=5
    )


def test_client_reads_headers_and_retries_after_the_advertised_delay(served: tuple[str, StatusLog]) -> None:
    """The headers reach the client; a rate_limit_exceeded is retried after retry-after-ms and succeeds."""
    url, log = served
    client = openai.OpenAI(base_url=url, api_key="sk-demo-1", max_retries=2)
    first = ask(client)
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"] == "1.5s"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 10_000
    assert first.parse().choices[0].message.content == "pong"
    second = ask(client)  # refused once, then retried by the client itself
    assert second.parse().choices[0].message.content == "pong"
    statuses = [status for _, status, _ in log.seen]
    assert statuses == [200, 429, 200]
    (refused_at, _, refusal), (retried_at, _, _) = log.seen[1], log.seen[2]
    advertised = int(refusal["retry-after-ms"]) / 1000
    assert 0 < advertised <= WINDOW and refusal["retry-after"] == "2"
    assert refusal.get("x-should-retry") is None
    assert retried_at - refused_at >= advertised - 0.01


def test_client_does_not_retry_insufficient_quota(served: tuple[str, StatusLog]) -> None:
    """An organization over its budget gets insufficient_quota once: no retry."""
    url, log = served
    client = openai.OpenAI(base_url=url, api_key="sk-demo-broke", max_retries=3)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client)
    assert refused.value.code == "insufficient_quota"
    assert [status for _, status, _ in log.seen] == [429], log.seen


def test_client_sees_rate_limit_error_when_retries_run_out(served: tuple[str, StatusLog]) -> None:
    """With retries off, the client raises RateLimitError with code rate_limit_exceeded and type requests."""
    url, _ = served
    client = openai.OpenAI(base_url=url, api_key="sk-demo-2", max_retries=0)
    ask(client)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client)
    assert refused.value.code == "rate_limit_exceeded" and refused.value.type == "requests"
    assert "x-ratelimit-remaining-requests" in refused.value.response.headers


def test_example_builds_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without REDIS_URL the example keeps counts in memory; with it, in Redis."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert callable(from_environment())
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert callable(from_environment())
