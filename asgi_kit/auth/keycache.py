"""The API-key verifier's memory of what the store said, so a known key costs no store query.

Keyed on the public key id (never the secret). Two bounded :class:`VerifiedTokenCache` maps:

- **records**: key id -> the store's record, for ``ttl`` seconds (the safety net; a change
  feed such as ``asgi_kit.database.APIKeyEventListener`` drops entries as soon as the row
  changes). The verifier still checks the presented key against the record's hash, its expiry
  and its revocation on every hit: the cache saves the query, never a check.
- **unknown**: key ids the store does not hold, for ``negative_ttl`` seconds (short), so a
  client hammering one unknown or deleted key costs one query per ``negative_ttl``.

Concurrent misses of one key id share one store query (single flight). An invalidation that
arrives while a query is running wins: the answer of that query is used by the requests that
asked for it but not remembered, because it may predate the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from asgi_kit.auth.cache import VerifiedTokenCache
from asgi_kit.auth.stores import APIKeyRecord

_UNKNOWN: Final = True  # the value of a negative entry (the cache's get() returns None on a miss)


class APIKeyRecordCache:
    """Bounded, expiring ``key id -> record`` and ``key id -> unknown`` maps with single-flight loads.

    Args:
        lookup: the store query, ``key id -> record or None``; it raises on an outage.
        size: records kept at most (0 keeps none).
        ttl: seconds a record is kept (0 keeps none).
        negative_size: unknown key ids kept at most (0 keeps none).
        negative_ttl: seconds an unknown key id is kept (0 keeps none).
        clock: seconds since the epoch.

    Options are validated by the verifier that owns the cache (it names them).
    """

    __slots__ = (
        "_clock",
        "_generation",
        "_inflight",
        "_lookup",
        "_negative_ttl",
        "_ttl",
        "lookups",
        "records",
        "unknown",
    )

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[APIKeyRecord | None]],
        *,
        size: int,
        ttl: float,
        negative_size: int,
        negative_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        # Admit on first sight (no doorkeeper): a key id is a long-lived credential, not a
        # one-shot token, and every miss here is a query.
        self.records: VerifiedTokenCache[APIKeyRecord] = VerifiedTokenCache(
            size if ttl > 0 else 0, clock=clock, admit_repeated=False
        )
        self.unknown: VerifiedTokenCache[bool] = VerifiedTokenCache(
            negative_size if negative_ttl > 0 else 0, clock=clock, admit_repeated=False
        )
        self._inflight: dict[bytes, asyncio.Task[APIKeyRecord | None]] = {}
        self._generation = 0
        #: store queries made (misses that were not joined to a running query)
        self.lookups = 0

    async def load(self, key_id: bytes) -> APIKeyRecord | None:
        """The store's answer for a key id that missed :attr:`records` (raises what the store raises)."""
        if self.unknown.get(key_id) is not None:
            return None
        task = self._inflight.get(key_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(key_id, self._generation))
            self._inflight[key_id] = task
            task.add_done_callback(lambda done: self._finished(key_id, done))
        # Shielded: a waiter that is cancelled (its client left) does not cancel the others' query.
        return await asyncio.shield(task)

    async def _fetch(self, key_id: bytes, generation: int) -> APIKeyRecord | None:
        self.lookups += 1
        record = await self._lookup(key_id.decode("ascii"))
        if generation == self._generation:  # no invalidation arrived while the query ran
            now = self._clock()
            if record is None:
                self.unknown.put(key_id, _UNKNOWN, now + self._negative_ttl)
            else:
                self.records.put(key_id, record, now + self._ttl)
        return record

    def _finished(self, key_id: bytes, task: asyncio.Task[APIKeyRecord | None]) -> None:
        if self._inflight.get(key_id) is task:
            del self._inflight[key_id]
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone

    def invalidate(self, key_id: str) -> None:
        """Forget ``key_id``; a query for it already running is not remembered."""
        key = key_id.encode("ascii", "replace")
        self._generation += 1
        self.records.discard(key)
        self.unknown.discard(key)
        self._inflight.pop(key, None)  # later requests start a fresh query

    def invalidate_all(self) -> None:
        """Forget every key; no query already running is remembered."""
        self._generation += 1
        self.records.clear()
        self.unknown.clear()
        self._inflight.clear()

    def __len__(self) -> int:
        return len(self.records) + len(self.unknown)


__all__ = ["APIKeyRecordCache"]
