"""The fake upstream's metering aids: generated tokens per request id, failures mid-stream."""

from __future__ import annotations

import httpx

from asgi_kit.testing.fake_upstream import FakeOpenAI


async def test_generated_tokens_per_request_and_failure_after_k_chunks() -> None:
    """Plain, streamed and failed-midway calls are counted per X-Request-ID: prompt + tokens sent."""
    fake = FakeOpenAI()
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        message = {"role": "user", "content": "one two three"}
        plain = await http.post(
            "/v1/chat/completions",
            json={"model": "fake-gpt-4o-mini", "messages": [message]},
            headers={"X-Request-ID": "plain"},
        )
        assert plain.json()["usage"]["total_tokens"] == 7  # 3 prompt words, "Echo: one two three"
        streamed = await http.post(
            "/v1/chat/completions",
            json={"model": "fake-gpt-4o-mini", "messages": [message], "stream": True},
            headers={"X-Request-ID": "stream"},
        )
        assert streamed.text.endswith("data: [DONE]\n\n")
        failing = {"role": "user", "content": "[fail-after:2] a b c d"}
        failed = await http.post(
            "/v1/chat/completions",
            json={"model": "fake-gpt-4o-mini", "messages": [failing], "stream": True},
            headers={"X-Request-ID": "failed"},
        )
        assert "event: error" in failed.text and "[DONE]" not in failed.text
        by_header = await http.post(
            "/v1/chat/completions",
            json={"model": "fake-gpt-4o-mini", "messages": [message], "stream": True},
            headers={"X-Request-ID": "header", "x-fake-fail-after": "1"},
        )
        assert "event: error" in by_header.text
        await http.post(
            "/v1/embeddings",
            json={"model": "fake-embedding", "input": "a b"},
            headers={"X-Request-ID": "emb"},
        )
        counts = (await http.get("/_fake/generated")).json()
    assert counts == {"plain": 7, "stream": 7, "failed": 5 + 2, "header": 3 + 1, "emb": 2}
