"""Two uvicorn workers with cached API keys: a plain SQL revocation reaches both within 1 s, every time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from asgi_kit.auth import generate_api_key, hash_api_key, parse_api_key
from asgi_kit.database.postgres import postgres_conninfo
from tests.database.conftest import admin_execute, database_name
from tests.harness.servers import _wait_listening, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.slow]

TRIALS = 20
DEADLINE = 1.0  # seconds from the committed UPDATE to both workers refusing
ROUND = 8  # concurrent fresh connections per round, so both workers get some


@pytest.fixture(scope="module")
def workers(migrated_url: str) -> Iterator[tuple[str, str]]:
    """``uvicorn --workers 2`` serving tests/database/key_events_app.py; yields (base URL, application_name)."""
    port = free_port()
    name = f"kw-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KEY_EVENTS_DATABASE_URL": migrated_url, "KEY_EVENTS_APPLICATION_NAME": name}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.database.key_events_app:create_app",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        _wait_listening(port, time.monotonic() + 30)
        wait_listeners(migrated_url, name, 2, exclude=set())
        yield f"http://127.0.0.1:{port}", name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def listener_pids(url: str, name: str) -> set[int]:
    rows = admin_execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (database_name(url), name),
    )
    return {row[0] for row in rows}


def wait_listeners(url: str, name: str, count: int, *, exclude: set[int], timeout: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = listener_pids(url, name)
        if len(pids) == count and not pids & exclude:
            return pids
        time.sleep(0.02)
    raise AssertionError(f"{count} listener connections not seen in {timeout} s")


def sql(url: str, statement: str, params: tuple[object, ...]) -> None:
    with psycopg.connect(postgres_conninfo(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement, params)


async def one_round(client: httpx.AsyncClient, key: str) -> list[tuple[int, int, float]]:
    """ROUND concurrent requests, each on a new connection: [(worker pid, status, monotonic time)]."""

    async def one() -> tuple[int, int, float]:
        response = await client.get("/", headers={"x-api-key": key, "connection": "close"})
        return int(response.headers["x-worker-pid"]), response.status_code, time.monotonic()

    return await asyncio.gather(*(one() for _ in range(ROUND)))


async def until_both(
    client: httpx.AsyncClient, key: str, status: int, *, deadline: float, phase: str
) -> float:
    """Rounds until both workers answered ``status``; a worker going back to the old answer fails.

    Returns when (monotonic) the second worker first answered ``status``.
    """
    switched: dict[int, float] = {}
    while len(switched) < 2:
        assert time.monotonic() < deadline, f"{phase}: only {len(switched)} of 2 workers switched in time"
        for pid, answer, at in await one_round(client, key):
            if answer == status:
                switched.setdefault(pid, at)
            else:
                assert pid not in switched, f"{phase}: worker {pid} answered {answer} after {status}"
    return max(switched.values())


async def trial(url: str, client: httpx.AsyncClient, org: str) -> float:
    """One key: cached by both workers, revoked by plain SQL; seconds until both refuse it."""
    key = generate_api_key()
    key_id = parse_api_key(key).key_id
    sql(
        url,
        "INSERT INTO api_keys (id, org_id, key_hash) VALUES (%s, %s, %s)",
        (key_id, org, hash_api_key(key)),
    )
    await until_both(client, key, 200, deadline=time.monotonic() + 10, phase="warm-up")
    sql(url, "UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key_id,))
    committed = time.monotonic()
    return await until_both(client, key, 401, deadline=committed + DEADLINE, phase="revocation") - committed


async def trials(url: str, base: str) -> list[float]:
    org = f"org-{uuid.uuid4().hex[:8]}"
    sql(url, "INSERT INTO organizations (id, name, display_name) VALUES (%s, %s, %s)", (org, org, org))
    # No keep-alive: every request opens a new connection, which either worker may accept.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5.0) as client:
        return [await trial(url, client, org) for _ in range(TRIALS)]


async def test_a_revocation_reaches_both_workers_within_a_second_even_after_the_listeners_are_killed(
    migrated_url: str, workers: tuple[str, str]
) -> None:
    """20/20 trials: both workers refuse a revoked key in < 1 s; again after pg_terminate_backend of the listeners."""
    base, name = workers
    before = await trials(migrated_url, base)
    print("revocation seconds before", [round(t, 3) for t in before])
    assert len(before) == TRIALS and max(before) < DEADLINE
    old = listener_pids(migrated_url, name)
    assert len(old) == 2
    admin_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (database_name(migrated_url), name),
    )
    wait_listeners(migrated_url, name, 2, exclude=old)
    after = await trials(migrated_url, base)
    print("revocation seconds after", [round(t, 3) for t in after])
    assert len(after) == TRIALS and max(after) < DEADLINE


async def test_a_key_inserted_after_both_workers_refused_it_is_accepted_promptly(
    migrated_url: str, workers: tuple[str, str]
) -> None:
    """Both workers remember an unknown key (60 s); its INSERT makes it valid on both within 1 s."""
    base, _ = workers
    org = f"org-{uuid.uuid4().hex[:8]}"
    sql(
        migrated_url,
        "INSERT INTO organizations (id, name, display_name) VALUES (%s, %s, %s)",
        (org, org, org),
    )
    key = generate_api_key()
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5.0) as client:
        await until_both(client, key, 401, deadline=time.monotonic() + 10, phase="unknown")
        sql(
            migrated_url,
            "INSERT INTO api_keys (id, org_id, key_hash) VALUES (%s, %s, %s)",
            (parse_api_key(key).key_id, org, hash_api_key(key)),
        )
        committed = time.monotonic()
        assert (
            await until_both(client, key, 200, deadline=committed + DEADLINE, phase="insert") - committed
            < DEADLINE
        )
