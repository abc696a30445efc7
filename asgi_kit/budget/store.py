"""Where token budgets live: the :class:`BudgetStore` protocol and an in-memory store.

This module imports no optional dependency, so ``asgi_kit.database`` can implement the
protocol (``PostgresUsageStore``) against it. A store signals an outage by raising; raise
:class:`BudgetStoreUnavailableError` (or a subclass) so the middleware can tell an outage
from a bug by type, but :class:`~asgi_kit.budget.middleware.BudgetMiddleware` treats any
exception from a lookup as an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable

from asgi_kit.models import Usage


class BudgetStoreUnavailableError(Exception):
    """The budget store could not be consulted. The message holds no DSN or driver text.

    ``retry_after`` is a hint in seconds for the ``Retry-After`` of the 503, when known.
    """

    def __init__(
        self, message: str = "budget store unavailable", *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


__all__ = [
    "BudgetState",
    "BudgetStore",
    "BudgetStoreUnavailableError",
    "InMemoryBudgetStore",
    "month_start",
    "next_month_start",
]
