"""The demo gateway, driven by the official `openai` package over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import openai
import pytest

from asgi_kit.auth.apikey import generate_api_key
from asgi_kit.demo import DemoConfig, build_gateway
from asgi_kit.logging import new_logger
from tests.harness.servers import free_port, serve

pytestmark = pytest.mark.integration


def run_gateway(budget: int = 1_000_000, **overrides: object):  # type: ignore[no-untyped-def]
    port = free_port()
    key = generate_api_key("sk", environment="demo")
    stream = io.StringIO()
    logger = new_logger(f"demo-test-{port}", stream=stream)
    config = DemoConfig(port=port, api_key=key, budget_tokens=budget, token_delay=0.0, **overrides)  # type: ignore[arg-type]
    return config, serve(build_gateway(config, logger=logger), port=port, lifespan="on"), stream


async def test_openai_package_chat_stream_models_and_bad_key() -> None:
    """The official client completes a chat (plain and streaming), lists models, gets 401 for a bad key."""
    config, server, _ = run_gateway()
    with server as served:
        client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=config.api_key, max_retries=0)
        completion = await client.chat.completions.create(
            model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "hello kit"}]
        )
        assert "hello kit" in (completion.choices[0].message.content or "")
        assert completion.usage is not None and completion.usage.total_tokens > 0

        pieces = []
        stream = await client.chat.completions.create(
            model="fake-gpt-4o-mini",
            messages=[{"role": "user", "content": "stream me please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage
        assert "stream me please" in "".join(pieces)
        assert usage is not None and usage.completion_tokens > 0

        models = await client.models.list()
        assert "fake-gpt-4o-mini" in [m.id for m in models.data]

        embeddings = await client.embeddings.create(model="fake-embedding", input=["a b", "c"])
        assert len(embeddings.data) == 2

        bad = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="sk-not-a-real-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.models.list()
        assert info.value.status_code == 401
        await client.close()
        await bad.close()


async def test_budget_exhaustion_is_insufficient_quota_without_retry() -> None:
    """Once the organization's budget cannot cover a call the client gets insufficient_quota, and does not retry."""
    config, server, log = run_gateway(budget=12, reserve_max_tokens=4)
    with server as served:
        client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=config.api_key, max_retries=3)
        spent = 0
        with pytest.raises(openai.RateLimitError) as info:
            for _ in range(20):
                completion = await client.chat.completions.create(
                    model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "one two three"}]
                )
                assert completion.usage is not None
                spent += completion.usage.total_tokens
        # Each call reserved its worst case (3 prompt words + 4) first: the budget is never overrun.
        assert 0 < spent <= 12
        assert info.value.code == "insufficient_quota"
        assert info.value.response.headers["x-should-retry"] == "false"
        await client.close()
        rejected: list[dict[str, object]] = []
        for _ in range(100):  # the access-log line is written by the server thread, just after the answer
            records = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
            rejected = [r for r in records if r.get("status") == 429]
            if rejected:
                break
            await asyncio.sleep(0.02)
        assert len(rejected) == 1, "the client retried a non-retryable 429"


async def test_health_metrics_and_error_shapes() -> None:
    """Health and metrics are public; errors under /v1 are OpenAI's, elsewhere problem+json."""
    config, server, _ = run_gateway()
    with server as served:
        async with httpx.AsyncClient(base_url=served.url) as http:
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/readyz")).json()["status"] == "pass"
            auth = {"Authorization": f"Bearer {config.api_key}"}
            bad = await http.post("/v1/chat/completions", headers=auth, content=b"{not json")
            assert bad.status_code == 400
            assert bad.headers["content-type"] == "application/json"
            assert bad.json()["error"]["type"] == "invalid_request_error"
            missing = await http.post(
                "/v1/chat/completions", headers=auth, json={"model": "fake-gpt-4o-mini"}
            )
            assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
            wrong_method = await http.get("/v1/chat/completions", headers=auth)
            assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
            assert wrong_method.json()["error"]["type"] == "invalid_request_error"
            unknown = await http.get("/v1/nothing", headers=auth)
            assert unknown.status_code == 404 and unknown.json()["error"]["code"] is None
            assert unknown.headers["x-request-id"]
            elsewhere = await http.get("/nothing", headers=auth)
            assert elsewhere.status_code == 404
            assert elsewhere.headers["content-type"] == "application/problem+json"
            assert elsewhere.json()["request_id"] == elsewhere.headers["x-request-id"]
            upstream_error = await http.post(
                "/v1/chat/completions",
                headers=auth,
                json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
            )
            assert upstream_error.status_code == 404
            assert upstream_error.json()["error"]["code"] == "model_not_found"
            assert "no-such-model" not in upstream_error.text
            metrics = (await http.get("/metrics")).text
            assert 'route="/v1/chat/completions"' in metrics
            assert "/upstream" not in metrics


async def test_rate_limit_headers_and_refusal_on_openai_routes() -> None:
    """Every /v1 answer carries OpenAI's x-ratelimit-* headers; past the key's limit, a retryable rate_limit_exceeded."""
    config, server, _ = run_gateway(rate_limit_rpm=2)
    with server as served:
        client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=config.api_key, max_retries=0)
        first = await client.models.with_raw_response.list()
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert "x-ratelimit-limit-tokens" in first.headers
        await client.models.list()
        with pytest.raises(openai.RateLimitError) as refused:
            await client.models.list()
        assert (refused.value.type, refused.value.code) == ("requests", "rate_limit_exceeded")
        headers = refused.value.response.headers
        assert int(headers["retry-after"]) >= 1 and "x-should-retry" not in headers
        await client.close()


async def test_rate_limits_are_shared_through_redis() -> None:
    """Two gateway processes' worth of gateways on one Redis count one key's requests together."""
    from tests.ratelimit.redis_harness import require_redis

    redis_url = require_redis()
    key = generate_api_key("sk", environment="demo")
    configs = [
        DemoConfig(port=free_port(), api_key=key, token_delay=0.0, rate_limit_rpm=3, redis_url=redis_url)
        for _ in range(2)
    ]
    logger = new_logger("demo-shared-limits", stream=io.StringIO())
    with (
        serve(build_gateway(configs[0], logger=logger), port=configs[0].port, lifespan="on") as one,
        serve(build_gateway(configs[1], logger=logger), port=configs[1].port, lifespan="on") as two,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:
            statuses = [
                (await client.get(f"{served.url}/v1/models")).status_code for served in (one, two, one, two)
            ]
    assert statuses == [200, 200, 200, 429]
