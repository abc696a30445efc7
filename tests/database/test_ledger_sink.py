"""PostgresUsageSink against the real PostgreSQL: one statement per batch, idempotent, rollover."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from asgi_kit.budget import UsageLedger, UsageRecord
from asgi_kit.database import PostgresPool, PostgresUsageSink, PostgresUsageStore, new_postgres_pool
from asgi_kit.database.postgres import postgres_conninfo
from asgi_kit.database.stores import borrow
from tests.database.conftest import new_org_id

pytestmark = pytest.mark.postgres


def rec(request_id: str, org: str, prompt: int = 1, completion: int = 2) -> UsageRecord:
    return UsageRecord(
        request_id=request_id, org_id=org, model="m", prompt_tokens=prompt, completion_tokens=completion
    )


async def used(pool: PostgresPool, org: str) -> int:
    state = await PostgresUsageStore(pool).get_budget(org)
    assert state is not None
    return state.used


async def rows(pool: PostgresPool, org: str) -> int:
    async with borrow(pool) as conn:
        cursor = await conn.execute("SELECT count(*) FROM usage WHERE org_id = %s", (org,))
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def test_one_statement_per_batch_summed_per_organization(pool: PostgresPool) -> None:
    """A batch of several organizations' records is one statement; each counter gets its own sum."""
    store = PostgresUsageStore(pool)
    a, b = new_org_id(), new_org_id()
    await store.create_organization(a, a, budget_tokens_monthly=1000)
    await store.create_organization(b, b, budget_tokens_monthly=1000)
    sink = PostgresUsageSink(pool)
    await sink.write_batch([rec(f"{a}-{n}", a) for n in range(5)] + [rec(f"{b}-1", b, 10, 20)])
    assert sink.statements == 1 and sink.inserted == 6
    assert await used(pool, a) == 15 and await used(pool, b) == 30
    assert await store.usage_total(a) == 15
    await sink.write_batch([])
    assert sink.statements == 1


async def test_replayed_records_never_count_twice(pool: PostgresPool) -> None:
    """A batch written again (a replay), or holding a request twice, adds only the new rows."""
    store = PostgresUsageStore(pool)
    org = new_org_id()
    await store.create_organization(org, org, budget_tokens_monthly=None)
    sink = PostgresUsageSink(pool)
    batch = [rec(f"{org}-1", org), rec(f"{org}-2", org)]
    await sink.write_batch(batch)
    await sink.write_batch([*batch, rec(f"{org}-3", org), rec(f"{org}-3", org)])
    assert await used(pool, org) == 9 and await rows(pool, org) == 3
    assert sink.duplicates == 3


async def test_unknown_organization_is_dropped_not_poisoning(pool: PostgresPool) -> None:
    """Records of an unknown organization are dropped and counted; the rest of the batch lands."""
    store = PostgresUsageStore(pool)
    org = new_org_id()
    await store.create_organization(org, org)
    sink = PostgresUsageSink(pool)
    await sink.write_batch([rec(f"{org}-1", org), rec("ghost-1", "org-does-not-exist")])
    assert sink.dropped == 1 and await used(pool, org) == 3
    assert "statements=1" in repr(sink)


async def test_month_rollover_restarts_the_counter(pool: PostgresPool) -> None:
    """A batch in a new month (UTC) restarts the counter from the batch's tokens."""
    org = new_org_id()
    january = PostgresUsageStore(pool, clock=lambda: datetime(2026, 1, 20, tzinfo=UTC))
    await january.create_organization(org, org)
    await PostgresUsageSink(pool, clock=lambda: datetime(2026, 1, 20, tzinfo=UTC)).write_batch(
        [rec(f"{org}-1", org, 50, 50)]
    )
    february = PostgresUsageSink(pool, clock=lambda: datetime(2026, 2, 1, tzinfo=UTC))
    await february.write_batch([rec(f"{org}-2", org, 1, 1)])
    state = await PostgresUsageStore(pool, clock=lambda: datetime(2026, 2, 2, tzinfo=UTC)).get_budget(org)
    assert state is not None and state.used == 2 and state.period_start == date(2026, 2, 1)


async def test_ledger_on_postgres_groups_settled_calls(pool: PostgresPool, tmp_path: Path) -> None:
    """Through the ledger, 200 records recorded at once cost a handful of statements."""
    store = PostgresUsageStore(pool)
    org = new_org_id()
    await store.create_organization(org, org)
    sink = PostgresUsageSink(pool)
    ledger = UsageLedger(sink, spool_path=tmp_path, max_delay=0.02)
    await ledger.start()
    for n in range(200):
        ledger.record(rec(f"{org}-{n}", org))
    await ledger.close()
    assert await used(pool, org) == 600 and sink.statements <= 2


def _stat(conn: psycopg.Connection[tuple[int, ...]]) -> tuple[int, int]:
    row = conn.execute(
        "SELECT d.xact_commit, COALESCE(t.n_tup_ins, 0) FROM pg_stat_database AS d"
        " LEFT JOIN pg_stat_user_tables AS t ON t.relname = 'usage'"
        " WHERE d.datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_steady_300_calls_per_second_cost_one_statement_per_20(
    migrated_url: str, tmp_path: Path
) -> None:
    """300 settled calls/s for 3 s through the ledger: at most one statement per 20 calls,
    counted by the sink and cross-checked with pg_stat_database.xact_commit."""
    pool = await new_postgres_pool(migrated_url, min_size=1, max_size=2, timeout=5.0)
    try:
        store = PostgresUsageStore(pool)
        org = new_org_id()
        await store.create_organization(org, org)
        sink = PostgresUsageSink(pool)
        ledger = UsageLedger(sink, spool_path=tmp_path, max_delay=0.1)
        await ledger.start()
        with psycopg.connect(postgres_conninfo(migrated_url), autocommit=True) as observer:
            await asyncio.sleep(1.1)  # statistics are flushed at most once a second
            commits_before, _ = _stat(observer)
            loop = asyncio.get_running_loop()
            started = loop.time()
            calls = 0
            while calls < 900:  # 300 per second, in steps of 3 every 10 ms
                for _ in range(3):
                    ledger.record(rec(f"{org}-{calls}", org))
                    calls += 1
                await asyncio.sleep(max(started + calls / 300 - loop.time(), 0))
            await ledger.close()
            assert await used(pool, org) == 3 * calls
            await pool.close()  # a backend flushes its statistics when it exits
            await asyncio.sleep(0.5)
            commits_after, inserted = _stat(observer)
        assert inserted >= calls
        commits = commits_after - commits_before - 1  # minus the observer's own statistics read
        print(f"\nledger at 300 calls/s: {calls} calls, {sink.statements} statements, {commits} commits")
        assert calls / sink.statements >= 20
        # every commit: a batch, plus the pool's check of the connection it borrows, plus the reads here
        assert commits <= 2 * sink.statements + 8
    finally:
        await pool.close()
