"""The PostgreSQL stores: atomic usage and budgets, API keys, token revocation."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from asgi_kit.auth.stores import APIKeyRecord, APIKeyStore, TokenRevocationStore
from asgi_kit.budget import BudgetState, BudgetStore
from asgi_kit.database import (
    DatabaseError,
    DatabaseUnavailableError,
    PostgresAPIKeyStore,
    PostgresPool,
    PostgresTokenRevocationStore,
    PostgresUsageStore,
    UnknownOrganizationError,
)
from asgi_kit.models import Usage
from tests.database.conftest import new_org_id

pytestmark = pytest.mark.postgres


def usage(org_id: str, prompt: int = 3, completion: int = 2, **kwargs: object) -> Usage:
    return Usage(
        org_id=org_id, model="gpt-test", prompt_tokens=prompt, completion_tokens=completion, **kwargs
    )  # type: ignore[arg-type]


async def test_stores_implement_protocols(pool: PostgresPool) -> None:
    """The stores satisfy the budget and auth protocols."""
    assert isinstance(PostgresUsageStore(pool), BudgetStore)
    assert isinstance(PostgresAPIKeyStore(pool), APIKeyStore)
    assert isinstance(PostgresTokenRevocationStore(pool), TokenRevocationStore)


async def test_record_usage_updates_counter_and_rows(pool: PostgresPool) -> None:
    """record_usage inserts the row and adds prompt+completion tokens to the counter."""
    store = PostgresUsageStore(pool)
    org = new_org_id()
    await store.create_organization(org, org, budget_tokens_monthly=12)
    state = await store.record_usage(usage(org, user_id="u1", api_key_id="k1"))
    assert (state.limit, state.used, state.remaining, state.exceeded) == (12, 5, 7, False)
    state = await store.record_usage(usage(org, 5, 2))
    assert (state.used, state.remaining, state.exceeded) == (12, 0, True)
    assert await store.get_budget(org) == state
    assert await store.usage_total(org) == 12


async def test_unknown_org(pool: PostgresPool) -> None:
    """Unknown organizations read as None and refuse usage and budget changes."""
    store = PostgresUsageStore(pool)
    assert await store.get_budget("nobody") is None
    with pytest.raises(UnknownOrganizationError):
        await store.record_usage(usage("nobody"))
    with pytest.raises(UnknownOrganizationError):
        await store.set_budget("nobody", 5)


async def test_unlimited_and_set_budget(pool: PostgresPool) -> None:
    """An organization without a budget is unlimited until set_budget gives it one."""
    store = PostgresUsageStore(pool)
    org = new_org_id()
    await store.create_organization(org, org, display_name="Org")
    await store.record_usage(usage(org, 100, 0))
    state = await store.get_budget(org)
    assert state is not None and state.limit is None and not state.exceeded
    await store.set_budget(org, 50)
    state = await store.get_budget(org)
    assert state is not None and state.exceeded


async def test_concurrent_usage_is_exact(pool: PostgresPool) -> None:
    """200 concurrent recordings lose no update: counter == sum of rows == 200 * 5."""
    store = PostgresUsageStore(pool)
    org = new_org_id()
    await store.create_organization(org, org, budget_tokens_monthly=10_000)
    await asyncio.wait_for(asyncio.gather(*(store.record_usage(usage(org)) for _ in range(200))), 60)
    state = await store.get_budget(org)
    assert state is not None and state.used == 1000
    assert await store.usage_total(org) == 1000


async def test_monthly_rollover(pool: PostgresPool) -> None:
    """The counter restarts in a new month: reads show 0 and the next usage starts from it."""
    now = [datetime(2026, 1, 31, 23, 59, tzinfo=UTC)]
    store = PostgresUsageStore(pool, clock=lambda: now[0])
    org = new_org_id()
    await store.create_organization(org, org, budget_tokens_monthly=10)
    state = await store.record_usage(usage(org, 10, 0, created_at=now[0]))
    assert state.exceeded and state.period_start == date(2026, 1, 1)
    now[0] = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    assert await store.get_budget(org) == BudgetState(limit=10, used=0, period_start=date(2026, 2, 1))
    state = await store.record_usage(usage(org, 4, 0, created_at=now[0]))
    assert (state.used, state.period_start) == (4, date(2026, 2, 1))
    assert await store.usage_total(org) == 4
    assert await store.usage_total(org, since=date(2026, 1, 1)) == 14
    # a process whose clock still says January neither resets nor reads the old month
    late = PostgresUsageStore(pool, clock=lambda: datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
    state = await late.record_usage(usage(org, 1, 0, created_at=now[0]))
    assert (state.used, state.period_start) == (5, date(2026, 2, 1))


async def test_api_key_store_roundtrip(pool: PostgresPool) -> None:
    """Keys are stored by id with their hash, scopes and dates; last use and revocation persist."""
    usage_store = PostgresUsageStore(pool)
    org = new_org_id()
    await usage_store.create_organization(org, org)
    store = PostgresAPIKeyStore(pool)
    expires = datetime.now(UTC) + timedelta(days=30)
    record = APIKeyRecord(
        key_id=f"k{org}",
        org_id=org,
        user_id=None,
        role="org_admin",
        key_hash="ab" * 32,
        scopes=("models:use", "usage:read"),
        pepper_version=2,
        expires_at=expires,
    )
    await store.add(record, name="ci")
    assert await store.get_api_key(record.key_id) == record
    assert await store.get_api_key("missing") is None
    when = datetime.now(UTC)
    await store.touch_last_used(record.key_id, when)
    await store.touch_last_used(record.key_id, when - timedelta(hours=1))  # never moves back
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT last_used_at FROM api_keys WHERE id = %s", (record.key_id,))
        ).fetchone()
    assert row is not None and row[0] == when
    assert await store.revoke(record.key_id)
    assert not await store.revoke("missing")
    fetched = await store.get_api_key(record.key_id)
    assert fetched is not None and fetched.revoked_at is not None
    assert [r.key_id for r in await store.list_for_org(org)] == [record.key_id]


async def test_duplicate_api_key_is_database_error(pool: PostgresPool) -> None:
    """A constraint violation is a DatabaseError with its sqlstate, not the driver's exception."""
    store = PostgresAPIKeyStore(pool)
    record = APIKeyRecord(key_id=new_org_id(), org_id=None, user_id=None, role="org_user", key_hash="x")
    await store.add(record)
    with pytest.raises(DatabaseError) as info:
        await store.add(record)
    assert info.value.sqlstate == "23505"
    assert not isinstance(info.value, DatabaseUnavailableError)


async def test_revocation_store(pool: PostgresPool) -> None:
    """Revoking a jti or a family is seen by is_revoked; purge drops only expired rows."""
    store = PostgresTokenRevocationStore(pool)
    later = datetime.now(UTC) + timedelta(hours=1)
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert not await store.is_revoked("j1")
    await store.revoke("j1", later)
    await store.revoke("j1", later)  # idempotent
    assert await store.is_revoked("j1")
    assert not await store.is_revoked("j2", "fam")
    await store.revoke_family("fam", later)
    await store.revoke_family("fam", later)
    assert await store.is_revoked("j2", "fam")
    assert not await store.is_revoked("j2")
    await store.revoke("old", earlier)
    assert await store.mark_refresh_used("r-old", "fam2", earlier)
    assert await store.purge_expired() == 2
    assert await store.is_revoked("j1") and not await store.is_revoked("old")


async def test_mark_refresh_used_is_atomic(pool: PostgresPool) -> None:
    """Fifty concurrent marks of one refresh token: exactly one wins."""
    store = PostgresTokenRevocationStore(pool)
    later = datetime.now(UTC) + timedelta(hours=1)
    results = await asyncio.wait_for(
        asyncio.gather(*(store.mark_refresh_used("rt-1", "fam-1", later) for _ in range(50))), 30
    )
    assert results.count(True) == 1


async def test_closed_pool_is_unavailable(migrated_url: str) -> None:
    """Using a closed pool raises DatabaseUnavailableError for every store."""
    from asgi_kit.database import new_postgres_pool

    pool = await new_postgres_pool(migrated_url, min_size=0, max_size=1)
    await pool.close()
    with pytest.raises(DatabaseUnavailableError):
        await PostgresUsageStore(pool).get_budget("x")
    with pytest.raises(DatabaseUnavailableError):
        await PostgresAPIKeyStore(pool).get_api_key("x")
    with pytest.raises(DatabaseUnavailableError):
        await PostgresTokenRevocationStore(pool).is_revoked("x")
