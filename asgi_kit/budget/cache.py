"""The short, bounded per-process cache of budget lookups.

Why a cache: without one every request costs a database round trip. Why short: a cached
"under budget" answer keeps admitting requests after the organization crossed its budget
elsewhere. The overshoot window is therefore ``ttl`` seconds per process: in the worst case an
organization spends, past its budget, what all processes admit in ``ttl`` seconds plus the
requests already in flight when the budget was crossed. A cached "over budget" answer likewise
outlives a budget increase by at most ``ttl``.
"""

from __future__ import annotations

from collections.abc import Callable

from asgi_kit.budget.store import BudgetState


class BudgetCache:
    """A TTL cache with at most ``max_entries`` organizations; the oldest entry goes first."""

    __slots__ = ("_clock", "_entries", "_max_entries", "_ttl")

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, BudgetState | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def get(self, org_id: str) -> tuple[bool, BudgetState | None]:
        """``(hit, state)``; a miss or an expired entry gives ``(False, None)``.

        A disabled cache (``ttl`` 0) never hits: its entries expire as they are stored.
        """
        entry = self._entries.get(org_id)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            self._entries.pop(org_id, None)
            return False, None
        return True, entry[1]

    def put(self, org_id: str, state: BudgetState | None) -> None:
        entries = self._entries
        entries.pop(org_id, None)  # re-insert at the end: insertion order is age order
        while len(entries) >= self._max_entries:
            del entries[next(iter(entries))]
        entries[org_id] = (self._clock() + self._ttl, state)

    def clear(self) -> None:
        self._entries.clear()


__all__ = ["BudgetCache"]
