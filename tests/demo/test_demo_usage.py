"""The demo's ledger wiring: usage settled through the meter, backlog in /metrics and /readyz."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from asgi_kit.auth.apikey import generate_api_key
from asgi_kit.demo import DemoConfig, build_gateway
from asgi_kit.demo.usage import estimate_prompt_tokens, spool_directory
from tests.harness.servers import SERVERS, free_port, serve

pytestmark = pytest.mark.integration


def test_prompt_estimate_counts_words_of_text_and_parts() -> None:
    """The estimate counts the words of string contents and of text parts, nothing else."""
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "one two three"}, {"type": "image_url"}]},
        {"role": "user", "content": None},
        "not a message",
    ]
    assert estimate_prompt_tokens(messages) == 5


def test_default_spool_directory_is_keyed_by_database() -> None:
    """Two demos on different databases never share a default spool directory."""
    memory = spool_directory(DemoConfig())
    one = spool_directory(DemoConfig(database_url="postgresql://a@h/one"))
    two = spool_directory(DemoConfig(database_url="postgresql://a@h/two"))
    assert len({memory, one, two}) == 3 and memory.parent == one.parent
    assert spool_directory(DemoConfig(spool_dir="/x/y")) == Path("/x/y")


@pytest.mark.parametrize("server", SERVERS)
async def test_abandoned_streams_are_settled_with_the_upstream_usage(server: str, tmp_path: Path) -> None:
    """Streams a client abandons are drained to their usage: the budget is spent by exactly the
    tokens of full answers; /metrics shows the ledger and /readyz checks it."""
    port = free_port()
    key = generate_api_key("sk", environment="demo")
    config = DemoConfig(port=port, api_key=key, token_delay=0.01, spool_dir=str(tmp_path))
    app = build_gateway(config)
    headers = {"Authorization": f"Bearer {key}"}
    text = " ".join(f"w{n}" for n in range(30))
    body = {"model": "fake-gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": True}
    with serve(app, server, port=port, lifespan="on") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10.0) as http:
            for _ in range(3):
                async with http.stream(
                    "POST", "/v1/chat/completions", json=body, headers=headers
                ) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: {"):
                            break  # walk away after the first chunk
            # prompt 30 words + answer "Echo: " and 30 words = 61 tokens per call, all three drained
            async with asyncio.timeout(10):
                while True:
                    metrics = (await http.get("/metrics")).text
                    written = re.search(r"^usage_ledger_written_records_total (\S+)$", metrics, re.M)
                    if written and float(written.group(1)) == 3:
                        break
                    await asyncio.sleep(0.05)
            assert re.search(r"^usage_ledger_drains_total 3\.0$", metrics, re.M)
            assert 'usage_ledger_backlog_records{where="spool"} 0.0' in metrics
            ready = (await http.get("/readyz")).json()
            assert ready["status"] == "pass" and "usage_ledger" in ready["checks"]
            plain = await http.post(
                "/v1/chat/completions",
                json={"model": "fake-gpt-4o-mini", "messages": [{"role": "user", "content": "a b"}]},
                headers=headers,
            )
            assert plain.status_code == 200
            embedded = await http.post(
                "/v1/embeddings", json={"model": "fake-embedding", "input": ["a b", "c"]}, headers=headers
            )
            assert embedded.status_code == 200
            async with asyncio.timeout(10):
                while "usage_ledger_written_records_total 5.0" not in (await http.get("/metrics")).text:
                    await asyncio.sleep(0.05)
