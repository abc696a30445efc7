"""A bounded, expiry-aware cache of verified tokens, so a repeated token costs a dict lookup.

Keyed on the exact credential bytes the client sent: a lookup hit means "these exact bytes
were verified before". Revocation is *not* cached (it is keyed on ``jti`` and checked on
every request by the middleware). Entries die at the token's ``exp``; when the cache is full
the oldest entry goes first.

A token is admitted the second time it is verified, not the first (TinyLFU's "doorkeeper").
Clients that reuse a token (as real ones do) lose one extra verification; a stream of one-shot
tokens (short-lived tokens minted per call, a scanner with many stolen-but-valid tokens) never
enters the cache, so it cannot evict the entries that pay off, and the server does not keep a
few hundred bytes per request that will never be asked for again: measured in the benchmark
suite, that retention made every other layer of a full stack slower (more memory touched per
request), far beyond the cost of the insert itself.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from asgi_kit._asgi.options import check_int

V = TypeVar("V")

# The doorkeeper: one bit per slot, indexed by the token's hash (cached by the bytes object, and
# already computed by the lookup that missed). A collision only admits a token one sighting
# early. It is cleared after as many marks as a quarter of its slots, so it forgets one-shot
# tokens and at most about a quarter of them slip in.
_DOORKEEPER_BITS: Final = 1 << 16
_DOORKEEPER_MASK: Final = _DOORKEEPER_BITS - 1
_DOORKEEPER_RESET: Final = _DOORKEEPER_BITS // 4


class VerifiedTokenCache(Generic[V]):
    """``token bytes -> value`` until the token's expiry, holding at most ``maxsize`` entries.

    Args:
        maxsize: the most entries kept (0 disables the cache).
        clock: seconds since the epoch, compared with each entry's expiry.
        admit_repeated: admit a token on its second :meth:`put` only (the default); ``False``
            admits on the first.
    """

    __slots__ = ("_clock", "_doorkeeper", "_entries", "_marks", "_maxsize")

    def __init__(
        self, maxsize: int = 10_000, *, clock: Callable[[], float] = time.time, admit_repeated: bool = True
    ) -> None:
        self._maxsize = check_int("token_cache_size", maxsize, minimum=0)
        self._clock = clock
        self._doorkeeper = bytearray(_DOORKEEPER_BITS // 8) if admit_repeated else None
        self._marks = 0
        # An OrderedDict, not a dict: evicting a plain dict's first key walks the deleted slots
        # left at its front, which made put() 8% of a cold request once full of one-shot tokens.
        self._entries: OrderedDict[bytes, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: bytes) -> V | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            self._entries.pop(token, None)
            return None
        return entry[0]

    def put(self, token: bytes, value: V, expires_at: float) -> None:
        if self._maxsize == 0:
            return
        doorkeeper = self._doorkeeper
        if doorkeeper is not None:
            slot = hash(token) & _DOORKEEPER_MASK
            bit = 1 << (slot & 7)
            if not doorkeeper[slot >> 3] & bit:
                if self._marks >= _DOORKEEPER_RESET:
                    doorkeeper[:] = bytes(len(doorkeeper))
                    self._marks = 0
                doorkeeper[slot >> 3] |= bit
                self._marks += 1
                return
        entries = self._entries
        if len(entries) >= self._maxsize and token not in entries:
            entries.popitem(last=False)  # the oldest (expired ones also go on lookup)
        entries[token] = (value, expires_at)

    def discard(self, token: bytes) -> None:
        """Forget ``token`` now (its verdict changed before its expiry)."""
        self._entries.pop(token, None)

    def clear(self) -> None:
        self._entries.clear()
        if self._doorkeeper is not None:
            self._doorkeeper[:] = bytes(len(self._doorkeeper))
            self._marks = 0


__all__ = ["VerifiedTokenCache"]
