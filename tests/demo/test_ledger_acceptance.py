"""The usage ledger end to end: the demo gateway on a private PostgreSQL that goes down and comes
back, the fake upstream in its own process counting what it generated per request. The ledger's
tokens must equal the tokens generated, exactly, under uvicorn and hypercorn, also across a
SIGKILL of the gateway while records sit in its spool (issue 13)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from asgi_kit.auth.apikey import generate_api_key
from asgi_kit.cli.demo import provision_database
from asgi_kit.demo import DemoConfig
from tests.harness.private_postgres import PrivatePostgres, private_postgres
from tests.harness.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]
MODEL = "fake-gpt-4o-mini"
REQUESTS = 300
CONCURRENCY = 32
OUTAGE_SECONDS = 6.5  # longer than the demo pool's 5 s checkout timeout
ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.demo.ledger_server", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def process(*args: str, url: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = _spawn(*args, env=env)
    try:
        _wait_http(url, proc)
        yield proc
    finally:
        _stop(proc)


def generated(upstream: str) -> dict[str, int]:
    return dict(httpx.get(f"{upstream}/_fake/generated", timeout=5).json())


def counter(gateway: str, name: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    found = re.search(rf"^usage_ledger_{name}_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def spool_records(gateway: str) -> int:
    """Records in the gateway's spool, from /metrics."""
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    found = re.search(r'^usage_ledger_backlog_records\{where="spool"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else -1


async def wait_settled(gateway: str, timeout: float = 30.0, *, spooled: bool = False) -> None:
    """Until nothing is draining and the backlog is empty (or, with ``spooled``, all in the spool)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{gateway}/metrics", timeout=5).text
        memory = re.search(r'^usage_ledger_backlog_records\{where="memory"\} (\S+)$', text, re.M)
        spool = re.search(r'^usage_ledger_backlog_records\{where="spool"\} (\S+)$', text, re.M)
        draining = re.search(r"^usage_ledger_draining_streams (\S+)$", text, re.M)
        values = [float(m.group(1)) if m else -1.0 for m in (memory, spool, draining)]
        if values[0] == 0 and values[2] == 0 and (values[1] > 0 if spooled else values[1] == 0):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the ledger did not settle: {text[-800:]}")


def words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(f"w{rng.randrange(1000)}" for _ in range(rng.randint(low, high)))


async def one_request(
    http: httpx.AsyncClient, key: str, rng: random.Random, kind: str, size: tuple[int, int] = (2, 24)
) -> None:
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": uuid.uuid4().hex}
    text = words(rng, *size)
    if kind == "fail":
        text = f"[fail-after:{rng.randint(0, 10)}] {text}"
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    try:
        if kind == "plain":
            await http.post("/v1/chat/completions", json=body, headers=headers)
            return
        body["stream"] = True
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            limit = rng.randint(1, 12) if kind == "abandon" else None
            read = 0
            async for _ in response.aiter_lines():
                read += 1
                if limit is not None and read >= limit:
                    break  # the client walks away mid-stream: the connection is closed
    except httpx.HTTPError:
        pass  # a request refused or cut during the outage: whatever the upstream did is counted


async def drive(gateway: str, key: str, count: int, seed: int, outage: Any = None) -> None:
    rng = random.Random(seed)
    kinds = rng.choices(["plain", "stream", "abandon", "fail"], weights=[30, 30, 25, 15], k=count)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for kind in kinds:
        queue.put_nowait(kind)
    done = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        while not queue.empty():
            await one_request(http, key, rng, queue.get_nowait())
            done += 1

    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as http:
        workers = [asyncio.create_task(worker(http)) for _ in range(CONCURRENCY)]
        if outage is not None:
            while done < count // 3:
                await asyncio.sleep(0.05)
            await outage()
        await asyncio.gather(*workers)


def tokens_per_request(database_url: str) -> dict[str, int]:
    """Ledger tokens per client request id (the ledger key is ``<request id>.<per-call suffix>``)."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT split_part(request_id, '.', 1), SUM(prompt_tokens + completion_tokens) FROM usage GROUP BY 1"
        ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    """One private cluster for the module; each test takes a database of its own in it."""
    with private_postgres() as pg:
        yield pg


@contextmanager
def own_database(pg: PrivatePostgres, name: str) -> Iterator[tuple[PrivatePostgres, str]]:
    if not pg.running:
        pg.start()
    with psycopg.connect(pg.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield pg, pg.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
async def test_ledger_counts_every_generated_token_across_outage_and_sigkill(
    server: str, tmp_path: Path, cluster: PrivatePostgres
) -> None:
    """300 mixed requests through a PostgreSQL outage longer than the pool timeout, then a SIGKILL
    with records spooled: per request, the ledger holds exactly the tokens the upstream generated."""
    with own_database(cluster, f"ledger_{server}") as (pg, database_url):
        key = generate_api_key("sk", environment="demo")
        upstream_port, gateway_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        gateway = f"http://127.0.0.1:{gateway_port}"
        config = DemoConfig(
            port=gateway_port,
            api_key=key,
            budget_tokens=10**12,
            database_url=database_url,
            upstream_url=f"{upstream}/v1",
            spool_dir=str(tmp_path / "spool"),
            log_level="WARNING",
        )
        await provision_database(config)
        env = config.to_env()
        with process("upstream", "uvicorn", str(upstream_port), "0.01", url=f"{upstream}/v1/models"):
            gateway_proc = _spawn("gateway", server, str(gateway_port), env=env)
            try:
                _wait_http(f"{gateway}/livez", gateway_proc)

                async def outage() -> None:
                    await asyncio.to_thread(pg.stop)
                    await asyncio.sleep(OUTAGE_SECONDS)
                    await asyncio.to_thread(pg.start)

                await drive(gateway, key, REQUESTS, seed=13, outage=outage)
                await wait_settled(gateway)
                made = generated(upstream)
                assert len(made) >= REQUESTS // 3
                # the run did go through the paths it is meant to: drains, sink failures, the spool
                assert counter(gateway, "drains") > 0
                assert counter(gateway, "sink_failures") > 0 and counter(gateway, "spool_appends") > 0
                assert tokens_per_request(database_url) == {rid: n for rid, n in made.items() if n}

                # Streams in flight when PostgreSQL goes down settle into the spool...
                async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as http:
                    rng = random.Random(7)
                    streams = [
                        asyncio.create_task(one_request(http, key, rng, "stream", size=(80, 120)))
                        for _ in range(10)
                    ]
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(pg.stop)
                    await asyncio.gather(*streams)
                await wait_settled(gateway, spooled=True)
                spooled = spool_records(gateway)
                assert spooled > 0
                # ...and the gateway dies without a chance to flush.
                gateway_proc.send_signal(signal.SIGKILL)
                gateway_proc.wait(10)
            finally:
                _stop(gateway_proc)
            # Restarted while PostgreSQL is still down, it finds the spool; once PostgreSQL is
            # back every spooled record is in the ledger, once.
            with process("gateway", server, str(gateway_port), url=f"{gateway}/livez", env=env):
                assert spool_records(gateway) == spooled
                await asyncio.to_thread(pg.start)
                await wait_settled(gateway)
                made = generated(upstream)
                assert tokens_per_request(database_url) == {rid: n for rid, n in made.items() if n}
