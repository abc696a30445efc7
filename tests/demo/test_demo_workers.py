"""`asgi-kit demo --workers 2` on PostgreSQL: budgets and metrics hold across worker processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from asgi_kit.auth.apikey import generate_api_key
from tests.harness.servers import free_port, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
BUDGET = 60
RESERVE = 8  # completion tokens reserved per call ("one two three" completes in 4)
REQUESTS = 40


@pytest.fixture
def demo(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    port = free_port()
    key = generate_api_key("sk", environment="demo")
    log = tmp_path / "demo.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASGI_KIT_DEMO_", "PROMETHEUS_MULTIPROC_DIR"))
    }
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    (tmp_path / "metrics").mkdir()
    command = [
        sys.executable, "-m", "asgi_kit.cli", "demo", "--workers", "2", "--port", str(port),
        "--database-url", database_url, "--api-key", key, "--budget-tokens", str(BUDGET), "--token-delay", "0",
        "--reserve-max-tokens", str(RESERVE),
    ]  # fmt: skip
    with log.open("wb") as output:
        proc = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, time.monotonic() + 60)
        yield f"http://127.0.0.1:{port}", key, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


async def test_budget_and_metrics_across_two_workers(demo: tuple[str, str, Path], database_url: str) -> None:
    """Usage recorded equals tokens served, requests past the budget get 429, /metrics counts both workers."""
    url, key, log = demo
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "fake-gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:

        async def one() -> httpx.Response:
            return await client.post("/v1/chat/completions", json=body)

        responses: list[httpx.Response] = []
        for _ in range(REQUESTS // 8):
            responses.extend(await asyncio.gather(*(one() for _ in range(8))))
        served = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert len(served) + len(refused) == REQUESTS, [r.status_code for r in responses]
        assert refused, "the budget was never enforced"
        assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
        tokens = sum(r.json()["usage"]["total_tokens"] for r in served)
        per_request = served[0].json()["usage"]["total_tokens"]
        # Every call reserved its worst case (3 prompt words + RESERVE) from its worker's lease
        # first, so the budget is never overrun; what the two leases split leaves at most a
        # worst case per worker unspent.
        assert per_request <= 3 + RESERVE
        assert BUDGET - 2 * (3 + RESERVE) <= tokens <= BUDGET

        metrics = (await client.get("/metrics")).text
    # The ledger writes in batches, each call's usage at most recording_delay (1.1 s) plus one
    # flush after it settled: poll for it rather than read once.
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage"
            ).fetchone()
        recorded = row[0] if row is not None else None
        if recorded == tokens or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert recorded == tokens
    counted = sum(
        float(m.group(1))
        for m in re.finditer(r'http_requests_total\{[^}]*method="POST"[^}]*\} ([0-9.e+]+)', metrics)
    )
    # Every request, whichever worker served it; 429s are refused before routing, so their route
    # label is the unmatched value.
    assert counted == REQUESTS
    served_label = re.search(
        r'http_requests_total\{[^}]*route="/v1/chat/completions"[^}]*status="200"[^}]*\} ([0-9.e+]+)', metrics
    )
    assert served_label is not None and float(served_label.group(1)) == len(served)
    assert "API key" in log.read_text()
