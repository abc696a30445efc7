"""Where token budgets live: the :class:`BudgetStore` protocol and an in-memory store.

This module imports no optional dependency, so ``asgi_kit.database`` can implement the
protocol (``PostgresUsageStore``) against it. A store signals an outage by raising; raise
:class:`BudgetStoreUnavailableError` (or a subclass) so the middleware can tell an outage
from a bug by type, but :class:`~asgi_kit.budget.middleware.BudgetMiddleware` treats any
exception from a lookup as an outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable

from asgi_kit._asgi.exceptions import StoreUnavailableError
from asgi_kit.models import Usage


class BudgetStoreUnavailableError(StoreUnavailableError):
    """The budget store could not be consulted. The message holds no DSN or driver text.

    ``retry_after`` is a hint in seconds for the ``Retry-After`` of the 503, when known.
    """

    def __init__(
        self, message: str = "budget store unavailable", *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)


def month_start(when: datetime) -> date:
    """The first day of ``when``'s month in UTC: the start of the budget period."""
    utc = when.astimezone(UTC) if when.tzinfo is not None else when
    return date(utc.year, utc.month, 1)


def next_month_start(period_start: date) -> datetime:
    """Midnight UTC of the first day of the month after ``period_start``."""
    year, month = (
        (period_start.year + 1, 1)
        if period_start.month == 12
        else (period_start.year, period_start.month + 1)
    )
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """An organization's budget for the current period.

    ``limit`` is ``None`` when the organization has no budget (unlimited). ``used`` counts the
    tokens recorded since ``period_start`` (the first day of the month, UTC).
    """

    limit: int | None
    used: int
    period_start: date

    @property
    def remaining(self) -> int | None:
        """Tokens left this period, never negative; ``None`` when unlimited."""
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def exceeded(self) -> bool:
        """Whether the period's budget is used up (``used >= limit``)."""
        return self.limit is not None and self.used >= self.limit

    @property
    def period_end(self) -> datetime:
        """When the next period starts and the counter resets."""
        return next_month_start(self.period_start)


@runtime_checkable
class BudgetStore(Protocol):
    """Token budgets per organization, and the usage that spends them."""

    async def get_budget(self, org_id: str) -> BudgetState | None:
        """The budget of ``org_id`` this period, or ``None`` for an unknown organization. Raise on outage."""
        ...

    async def record_usage(self, usage: Usage) -> BudgetState:
        """Record ``usage`` and add its tokens to the organization's counter, atomically."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InMemoryBudgetStore:
    """A process-local :class:`BudgetStore` for tests, development and single-process apps.

    Counters roll over when the month changes (by ``clock``, UTC). ``lookups`` counts
    :meth:`get_budget` calls so tests can see the middleware's cache at work; ``usage`` keeps
    every recorded :class:`~asgi_kit.models.Usage`.
    """

    def __init__(
        self, budgets: Iterable[tuple[str, int | None]] = (), *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._clock = clock
        self._limits: dict[str, int | None] = {}
        self._used: dict[str, tuple[date, int]] = {}
        self._lock = asyncio.Lock()
        self.usage: list[Usage] = []
        self.lookups = 0
        for org_id, limit in budgets:
            self.set_budget(org_id, limit)

    def set_budget(self, org_id: str, limit: int | None) -> None:
        """Create the organization or change its monthly budget (``None``: unlimited)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError("limit must be a non-negative int or None")
        self._limits[org_id] = limit

    def _state(self, org_id: str, limit: int | None) -> BudgetState:
        period = month_start(self._clock())
        start, used = self._used.get(org_id, (period, 0))
        return BudgetState(limit=limit, used=used if start == period else 0, period_start=period)

    async def get_budget(self, org_id: str) -> BudgetState | None:
        self.lookups += 1
        if org_id not in self._limits:
            return None
        return self._state(org_id, self._limits[org_id])

    async def record_usage(self, usage: Usage) -> BudgetState:
        if usage.org_id not in self._limits:
            raise LookupError("unknown organization")
        async with self._lock:
            state = self._state(usage.org_id, self._limits[usage.org_id])
            used = state.used + usage.prompt_tokens + usage.completion_tokens
            self._used[usage.org_id] = (state.period_start, used)
            self.usage.append(usage)
            return BudgetState(limit=state.limit, used=used, period_start=state.period_start)


# --- Budget leases (issue 13): the chunks of budget a process reserves from ---------------------


@dataclass(frozen=True, slots=True)
class BudgetLease:
    """What a :meth:`BudgetLeaseStore.lease` call left its holder with.

    ``tokens`` is what the holder now holds (0: no lease). ``limit``, ``used`` (this period) and
    ``leased`` (what every *other* live lease on the organization holds) are the figures the
    grant was computed from; ``limit`` is ``None`` for an unlimited organization, which needs no
    lease (``tokens`` is then simply what was asked for, and nothing is stored).
    """

    tokens: int
    limit: int | None
    used: int
    leased: int

    @property
    def unlimited(self) -> bool:
        return self.limit is None


def lease_grant(limit: int | None, used: int, leased: int, *, keep: int, need: int, want: int) -> int:
    """The lease a holder gets: the one rule every :class:`BudgetLeaseStore` applies.

    ``available = limit - used - leased`` (``leased``: the other live leases). When the holder's
    ``need`` fits, it gets ``need`` plus up to ``want - need`` more, but at most half of what would
    be left: near the end of a budget the chunks shrink, so one process cannot take everything
    another will ask for next. When ``need`` does not fit, it keeps ``keep`` and nothing more.
    The result is never below ``keep``: tokens a holder has already promised to calls in flight
    (or that were settled but may not be in ``used`` yet) are never taken back from it.
    """
    if limit is None:
        return want
    available = limit - used - leased
    granted = need + min(want - need, (available - need) // 2) if available >= need else keep
    return max(granted, keep)


def check_lease_request(keep: int, need: int, want: int, ttl: float) -> None:
    """Raise ``ValueError`` unless ``0 <= keep <= need <= want`` and ``ttl`` is positive."""
    for name, value in (("keep", keep), ("need", need), ("want", want)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int number of tokens")
    if not 0 <= keep <= need <= want:
        raise ValueError("lease amounts must satisfy 0 <= keep <= need <= want")
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise ValueError("ttl must be a positive number of seconds")


@runtime_checkable
class BudgetLeaseStore(Protocol):
    """Leases of budget: each holder (a process) takes budget in chunks instead of a query per request.

    A lease is the number of tokens a holder may still spend (or has spent without it being in
    ``used`` yet). Live leases count against the budget beside ``used``: a grant never makes
    ``used + all leases`` exceed the limit, except by the ``keep`` a holder already had. Leases
    expire ``ttl`` seconds after their last :meth:`lease` call, so a holder that dies frees its
    budget by itself. Implementations must serialise grants per organization (the PostgreSQL
    store locks the organization's row) and roll the period over as ``record_usage`` does.
    """

    async def lease(
        self, org_id: str, holder: str, *, keep: int, need: int, want: int, ttl: float
    ) -> BudgetLease | None:
        """Set ``holder``'s lease on ``org_id`` by :func:`lease_grant` and renew it for ``ttl`` s.

        ``None`` for an unknown organization. Raise (a ``BudgetStoreUnavailableError``) on outage.
        """
        ...

    async def release(self, org_id: str, holder: str) -> None:
        """Drop ``holder``'s lease on ``org_id`` (nothing happens when it holds none)."""
        ...


class InMemoryLeaseStore:
    """A process-local :class:`BudgetLeaseStore` over any :class:`BudgetStore`'s ``used`` counter.

    For tests and single-process apps (several :class:`~asgi_kit.budget.reservation.BudgetReservations`
    sharing it behave like processes sharing PostgreSQL). ``calls`` counts :meth:`lease` calls;
    ``clock`` (monotonic seconds) decides expiry, so tests can let a lease lapse.
    """

    def __init__(self, budgets: BudgetStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not callable(getattr(budgets, "get_budget", None)):
            raise TypeError("budgets must be a BudgetStore (an object with async get_budget(org_id))")
        self._budgets = budgets
        self._clock = clock
        self._leases: dict[str, dict[str, tuple[int, float]]] = {}
        self._lock = asyncio.Lock()  # plays the organization row lock: grants never interleave
        self.calls = 0

    def leases(self, org_id: str) -> dict[str, int]:
        """The live leases on ``org_id``, by holder."""
        now = self._clock()
        return {h: t for h, (t, expires) in self._leases.get(org_id, {}).items() if expires > now}

    async def lease(
        self, org_id: str, holder: str, *, keep: int, need: int, want: int, ttl: float
    ) -> BudgetLease | None:
        check_lease_request(keep, need, want, ttl)
        async with self._lock:
            self.calls += 1
            state = await self._budgets.get_budget(org_id)
            if state is None:
                return None
            now = self._clock()
            # the other holders' live leases; expired ones (and this holder's old one) go
            table = {h: v for h, v in self._leases.get(org_id, {}).items() if v[1] > now and h != holder}
            leased = sum(tokens for tokens, _ in table.values())
            granted = lease_grant(state.limit, state.used, leased, keep=keep, need=need, want=want)
            if state.limit is not None and granted > 0:
                table[holder] = (granted, now + ttl)
            self._leases[org_id] = table
            return BudgetLease(tokens=granted, limit=state.limit, used=state.used, leased=leased)

    async def release(self, org_id: str, holder: str) -> None:
        self._leases.get(org_id, {}).pop(holder, None)


__all__ = [
    "BudgetLease",
    "BudgetLeaseStore",
    "BudgetState",
    "BudgetStore",
    "BudgetStoreUnavailableError",
    "InMemoryBudgetStore",
    "InMemoryLeaseStore",
    "check_lease_request",
    "lease_grant",
    "month_start",
    "next_month_start",
]
