"""PostgreSQL leases of budget: ``PostgresLeaseStore`` implements ``asgi_kit.budget.BudgetLeaseStore``.

Each process (a *holder*) keeps one row per organization in ``budget_leases`` (migration
``0007_budget_leases``): the tokens it may still spend, plus those it settled that may not be in
``organizations.tokens_used_current_month`` yet. A grant is one call of the SQL function
``asgi_kit_budget_lease``, which locks the organization's row (the lock every usage write takes
too), drops expired leases, and grants only what ``budget - used this month - the other live
leases`` allows, so concurrent grants from any number of processes and hosts never promise the
same tokens twice. The month rolls over as in ``PostgresUsageStore.record_usage``: a counter from
an older month counts as 0.

A lease expires ``ttl`` seconds after its last grant; ``BudgetReservations`` renews it while it
holds it. A holder that dies (SIGKILL, a lost host) keeps its tokens charged until then; after
that the budget frees itself: the next grant on the organization deletes the expired row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from asgi_kit.budget.store import BudgetLease, check_lease_request, month_start
from asgi_kit.database.postgres import PostgresPool
from asgi_kit.database.stores import borrow

_LEASE: Final = "SELECT * FROM asgi_kit_budget_lease(%s, %s, %s, %s, %s, %s, %s)"
_RELEASE: Final = "DELETE FROM budget_leases WHERE org_id = %s AND holder = %s"
_LIVE: Final = "SELECT holder, tokens FROM budget_leases WHERE org_id = %s AND expires_at > clock_timestamp()"
_PURGE: Final = "DELETE FROM budget_leases WHERE expires_at <= clock_timestamp()"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PostgresLeaseStore:
    """Leases of budget in PostgreSQL, shared by every worker and host: a ``BudgetLeaseStore``.

    Every method borrows a pooled connection for one statement; failures raise
    ``DatabaseUnavailableError``/``DatabaseError`` as the other stores do.

    Args:
        pool: an open (or lifespan-opened) pool.
        clock: the current time, UTC: it picks the budget month (tests inject one to cross a
            month boundary). Lease expiry is the database's clock.
    """

    def __init__(self, pool: PostgresPool, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def lease(
        self, org_id: str, holder: str, *, keep: int, need: int, want: int, ttl: float
    ) -> BudgetLease | None:
        """Set ``holder``'s lease on ``org_id`` by ``lease_grant`` and renew it for ``ttl`` seconds."""
        check_lease_request(keep, need, want, ttl)
        params = (org_id, holder, keep, need, want, float(ttl), month_start(self._clock()))
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(_LEASE, params)
            row = await cursor.fetchone()
        if row is None:
            return None
        return BudgetLease(tokens=int(row[0]), limit=row[1], used=int(row[2]), leased=int(row[3]))

    async def release(self, org_id: str, holder: str) -> None:
        """Drop ``holder``'s lease on ``org_id``."""
        async with borrow(self._pool) as conn:
            await conn.execute(_RELEASE, (org_id, holder))

    async def leases(self, org_id: str) -> dict[str, int]:
        """The live leases on ``org_id``, by holder (to inspect; grants never read it)."""
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(_LIVE, (org_id,))
            rows = await cursor.fetchall()
        return {row[0]: int(row[1]) for row in rows}

    async def purge_expired(self) -> int:
        """Delete expired leases of every organization; returns how many went.

        Optional: each grant already drops its organization's expired leases.
        """
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(_PURGE)
            return cursor.rowcount


__all__ = ["PostgresLeaseStore"]
