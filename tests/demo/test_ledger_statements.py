"""Under steady load through the demo gateway on PostgreSQL, the usage ledger groups settled
calls: one statement per ``rate x max_delay`` calls, so at least 20 per statement from 200 calls/s
(issue 13). The ledger alone at 300 calls/s is pinned in tests/database/test_ledger_sink.py."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from asgi_kit.auth.apikey import generate_api_key
from asgi_kit.cli.demo import provision_database
from asgi_kit.demo import DemoConfig, build_gateway
from tests.harness.servers import free_port, serve

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]
SECONDS = 4.0
CONCURRENCY = 32


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found is not None, name
    return float(found.group(1))


async def test_one_statement_per_twenty_settled_calls(database_url: str, tmp_path: Path) -> None:
    """Calls per ledger statement grow with the load: >= 20 from 200 calls/s (max_delay 0.1 s),
    and in proportion below (a loaded CI machine may not reach that rate)."""
    port = free_port()
    config = DemoConfig(
        port=port,
        api_key=generate_api_key("sk", environment="demo"),
        budget_tokens=10**12,
        database_url=database_url,
        token_delay=0.0,
        spool_dir=str(tmp_path),
        log_level="WARNING",
    )
    await provision_database(config)
    body = {"model": "fake-gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]}
    headers = {"Authorization": f"Bearer {config.api_key}"}
    with serve(build_gateway(config), port=port, lifespan="on") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=30.0) as http:
            deadline = time.monotonic() + SECONDS
            sent = 0

            async def worker() -> None:
                nonlocal sent
                while time.monotonic() < deadline:
                    response = await http.post("/v1/chat/completions", json=body, headers=headers)
                    assert response.status_code == 200
                    sent += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.5)  # the last batch: max_delay is 0.1 s
            text = (await http.get("/metrics")).text
    records = metric(text, "usage_ledger_records_total")
    written = metric(text, "usage_ledger_written_records_total")
    batches = metric(text, "usage_ledger_batches_total")
    failures = metric(text, "usage_ledger_sink_failures_total")
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM usage").fetchone()
    assert row is not None and row[0] == records == written == sent
    statements = batches + failures
    rate = sent / elapsed
    print(
        f"\nledger: {sent} calls in {elapsed:.1f} s ({rate:.0f}/s), {statements:.0f} statements, "
        f"{sent / statements:.1f} calls per statement"
    )
    assert sent / statements >= min(20.0, rate * 0.1 * 0.5)
