"""PostgresLeaseStore: the grant rule in SQL, concurrency, expiry of a dead holder, month rollover."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from asgi_kit.budget import BudgetLeaseStore, BudgetReservations, ReservationRefusedError, lease_grant
from asgi_kit.database import PostgresLeaseStore, PostgresPool, PostgresUsageStore, new_postgres_pool
from asgi_kit.models import Usage
from tests.database.conftest import new_org_id

pytestmark = pytest.mark.postgres


async def new_org(pool: PostgresPool, budget: int | None) -> str:
    org = new_org_id()
    await PostgresUsageStore(pool).create_organization(org, org, budget_tokens_monthly=budget)
    return org


async def spend(pool: PostgresPool, org: str, tokens: int) -> None:
    await PostgresUsageStore(pool).record_usage(Usage(org_id=org, model="m", prompt_tokens=tokens))


@pytest.mark.parametrize(
    ("limit", "used", "others", "keep", "need", "want"),
    [
        (1000, 0, 0, 0, 100, 10_100),  # a fresh lease: need + half of the rest
        (1000, 0, 0, 0, 100, 200),  # plenty: the whole want
        (1000, 900, 0, 0, 100, 200),  # exactly the need fits
        (1000, 901, 0, 0, 100, 200),  # the need does not fit: nothing
        (1000, 900, 0, 300, 400, 500),  # does not fit, but keep is kept (past the budget)
        (1000, 200, 500, 50, 100, 1000),  # other holders count
        (1000, 0, 0, 0, 0, 0),  # nothing asked: no row
        (None, 10**9, 0, 0, 100, 300),  # unlimited: what was asked, no row
    ],
)
async def test_sql_grant_matches_the_python_rule(
    pool: PostgresPool, limit: int | None, used: int, others: int, keep: int, need: int, want: int
) -> None:
    """asgi_kit_budget_lease grants exactly what lease_grant computes, and reports its figures."""
    org = await new_org(pool, limit)
    store = PostgresLeaseStore(pool)
    if used:
        await spend(pool, org, used)
    if others:
        await store.lease(org, "other", keep=others, need=others, want=others, ttl=30)
    lease = await store.lease(org, "me", keep=keep, need=need, want=want, ttl=30)
    expected = lease_grant(limit, used, others, keep=keep, need=need, want=want)
    assert lease is not None
    assert (lease.tokens, lease.limit, lease.used, lease.leased) == (expected, limit, used, others)
    mine = (await store.leases(org)).get("me")
    assert mine == (expected if limit is not None and expected > 0 else None)


async def test_unknown_organization_and_release(pool: PostgresPool) -> None:
    """An unknown organization gets None; release drops the row; the store fits the protocol."""
    store = PostgresLeaseStore(pool)
    assert isinstance(store, BudgetLeaseStore)
    assert await store.lease("no-such-org", "me", keep=0, need=1, want=1, ttl=30) is None
    org = await new_org(pool, 1000)
    await store.lease(org, "me", keep=0, need=10, want=10, ttl=30)
    await store.release(org, "me")
    await store.release(org, "me")
    assert await store.leases(org) == {}
    with pytest.raises(ValueError, match="keep <= need <= want"):
        await store.lease(org, "me", keep=5, need=1, want=10, ttl=30)


async def test_concurrent_grants_never_promise_the_same_tokens(migrated_url: str, pool: PostgresPool) -> None:
    """Twenty holders asking at once on separate connections are granted at most the budget in all."""
    org = await new_org(pool, 1000)
    wide = await new_postgres_pool(migrated_url, min_size=10, max_size=20, timeout=10)
    try:
        store = PostgresLeaseStore(wide)
        grants = await asyncio.gather(
            *(store.lease(org, f"h{i}", keep=0, need=60, want=200, ttl=30) for i in range(20))
        )
    finally:
        await wide.close()
    total = sum(g.tokens for g in grants if g is not None)
    assert total <= 1000
    assert sum(1 for g in grants if g is not None and g.tokens >= 60) >= 5
    assert sum((await PostgresLeaseStore(pool).leases(org)).values()) == total


async def test_a_dead_holder_keeps_its_tokens_until_expiry(pool: PostgresPool) -> None:
    """A holder that never returns its lease keeps its tokens charged until the ttl, then they free."""
    org = await new_org(pool, 1000)
    store = PostgresLeaseStore(pool)
    dead = await store.lease(org, "dead", keep=0, need=800, want=800, ttl=1.0)
    assert dead is not None and dead.tokens == 800
    alive = BudgetReservations(store, lease_tokens=10_000, refusal_ttl=0, holder="alive")
    try:
        with pytest.raises(ReservationRefusedError):
            await alive.reserve(org, 300)  # the dead holder's 800 are still charged
        small = await alive.reserve(org, 200)
        small.release()
        await asyncio.sleep(1.2)
        big = await alive.reserve(org, 900)  # expired: the budget freed itself
        assert "dead" not in await store.leases(org)
        big.release()
    finally:
        await alive.aclose()
    assert await store.leases(org) == {}


async def test_settled_usage_leaves_the_lease_at_the_next_statement(pool: PostgresPool) -> None:
    """Usage recorded by record_usage and settled is counted once: the next statement drops it from the lease."""
    org = await new_org(pool, 10_000)
    store = PostgresLeaseStore(pool)
    async with BudgetReservations(store, lease_tokens=1000, holder="p") as reservations:
        reservation = await reservations.reserve(org, 500)
        assert (await store.leases(org))["p"] == 1500
        await spend(pool, org, 300)
        reservation.settle(300)
        # until the next statement the 300 are in used and in the lease (refuse early, never over)
        assert (await store.leases(org))["p"] == 1500
        big = await reservations.reserve(org, 1500)  # a top-up: the 300 leave the lease
        held = (await store.leases(org))["p"]
        assert held == reservations.snapshot(org).held
        assert reservations.snapshot(org).confirmed == 0
        assert held >= 1500 + 1200 - 300  # keep (free 700 + nothing open) + need, minus the settled 300
        big.release()
    assert await store.leases(org) == {}


async def test_a_new_month_starts_from_zero(pool: PostgresPool) -> None:
    """Usage counted in an older month does not reduce next month's grants."""
    org = await new_org(pool, 1000)
    await spend(pool, org, 1000)
    this_month = PostgresLeaseStore(pool)
    assert (await this_month.lease(org, "a", keep=0, need=1, want=1, ttl=30)).tokens == 0  # type: ignore[union-attr]
    now = datetime.now(UTC)
    next_month = datetime(now.year + (now.month == 12), now.month % 12 + 1, 2, tzinfo=UTC)
    later = PostgresLeaseStore(pool, clock=lambda: next_month)
    lease = await later.lease(org, "a", keep=0, need=1000, want=1000, ttl=30)
    assert lease is not None and (lease.tokens, lease.used) == (1000, 0)


async def test_purge_expired(pool: PostgresPool) -> None:
    """purge_expired deletes every expired lease and reports how many."""
    org = await new_org(pool, 1000)
    store = PostgresLeaseStore(pool)
    await store.lease(org, "short", keep=0, need=10, want=10, ttl=0.1)
    await store.lease(org, "long", keep=0, need=10, want=10, ttl=30)
    await asyncio.sleep(0.2)
    assert await store.purge_expired() >= 1
    assert await store.leases(org) == {"long": 10}
