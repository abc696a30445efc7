"""A bounded, expiry-aware cache of verified tokens, so a repeated token costs a dict lookup.

Keyed on the exact credential bytes the client sent: a lookup hit means "these exact bytes
were verified before". Revocation is *not* cached (it is keyed on ``jti`` and checked on
every request by the middleware). Entries die at the token's ``exp``; when the cache is full
the oldest entry goes first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class VerifiedTokenCache(Generic[V]):
    """``token bytes -> value`` until the token's expiry, holding at most ``maxsize`` entries."""

    __slots__ = ("_clock", "_entries", "_maxsize")

    def __init__(self, maxsize: int = 10_000, *, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 0:
            raise ValueError("token_cache_size must be an int >= 0 (0 disables the cache)")
        self._maxsize = maxsize
        self._clock = clock
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
        entries = self._entries
        if len(entries) >= self._maxsize and token not in entries:
            entries.popitem(last=False)  # the oldest (expired ones also go on lookup)
        entries[token] = (value, expires_at)

    def clear(self) -> None:
        self._entries.clear()


__all__ = ["VerifiedTokenCache"]
