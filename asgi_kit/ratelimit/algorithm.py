"""The sliding-window log: exact at every window edge, with no boundary for clients to pile up at.

Each subject keeps a log of what it was admitted (a time stamp and a cost: 1 for a request, the
reserved tokens for a call) and the running total of the costs still in the window. A check of
cost ``c`` against a limit ``L`` over a window ``W`` passes when ``used + c <= L``, where ``used``
counts the entries younger than ``W``; passing appends an entry. So in *every* interval of
length ``W`` (not only in aligned minutes) the admitted cost is at most ``L``: the trailing
window at the last admission of any interval contains the whole interval's admissions.

Capacity comes back entry by entry, exactly ``W`` after each admission, so there is no window
boundary at which every waiting client is released at once (the fixed-window herd at ``:00``).

- ``remaining``: ``L - used`` after this request (never below 0);
- ``reset``: the time until the window holds none of the usage counted so far, OpenAI's "time
  until the rate limit resets to its initial state" (``W`` right after an admission);
- ``retry``: for a refused check, the time until enough of the oldest entries have left the
  window for this cost to fit (``-1`` when the cost exceeds the limit itself: it never fits).

A correction (a token reservation settled with the real total) changes the cost of the entry in
place, so it leaves the window when the entry does. The same algorithm runs in Redis as a Lua
script (:mod:`asgi_kit.ratelimit.redis_backend`); this module is the one-process version and
the reference the property tests check.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic_ns
from typing import Any

NEVER = -1  # retry_ms of a check whose cost exceeds its limit


# Slotted dataclasses, not frozen ones or named tuples: a few are built per request, and a
# frozen dataclass's __init__ costs about three times a plain one, a named tuple's __new__ about
# twice (it is a Python function wrapping tuple.__new__). Treat them as read-only values.
@dataclass(slots=True)
class Check:
    """One limit to test: at most ``limit`` units per ``window_ms`` for ``key``; this request costs ``cost``."""

    key: str
    limit: int
    cost: int
    window_ms: int


@dataclass(slots=True)
class CheckResult:
    """Where one check stands after the request (milliseconds)."""

    remaining: int
    reset_ms: int
    retry_ms: int = 0  # 0: it passed; NEVER: the cost exceeds the limit


@dataclass(slots=True)
class Decision:
    """The answer to a request: every check passed (and was counted) or none was counted.

    ``handle`` is the backend's own reference to what it recorded, for corrections.
    """

    allowed: bool
    results: tuple[CheckResult, ...]
    handle: Any = None


class _Log:
    """One key's entries, oldest first, as two deques of ints (time stamps and costs).

    Ints, not an object per entry: entries live for a whole window, and an object each would
    grow what the garbage collector walks with the traffic. ``first`` numbers the oldest entry,
    so a correction finds its entry by number after older ones have left.
    """

    __slots__ = ("costs", "first", "stamps", "used")

    def __init__(self) -> None:
        self.stamps: deque[int] = deque()
        self.costs: deque[int] = deque()
        self.first = 0
        self.used = 0

    def expire(self, now: int, window_ms: int) -> None:
        stamps, costs = self.stamps, self.costs
        horizon = now - window_ms
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
            self.used -= costs.popleft()
            self.first += 1

    def take_back_newest(self) -> None:
        """Forget the newest entry (counted by a request that was then refused elsewhere)."""
        self.stamps.pop()
        self.used -= self.costs.pop()

    def retry_after(self, need: int, now: int, window_ms: int) -> int:
        """Milliseconds until the oldest entries have freed ``need`` units."""
        freed = 0
        for stamp, cost in zip(self.stamps, self.costs, strict=True):
            freed += cost
            if freed >= need:
                return max(stamp + window_ms - now, 1)
        return window_ms  # only a log whose total drifted gets here: wait a whole window

    def reset_after(self, now: int, window_ms: int) -> int:
        return max(self.stamps[-1] + window_ms - now, 0) if self.stamps else 0


class SlidingWindowLog:
    """Sliding-window logs for many keys in one process (not thread-safe: one event loop).

    Memory: one small entry per admitted request per key, kept for one window. ``max_keys``
    bounds how many keys are kept: past it, the key used least recently is dropped (a subject
    idle for longer than its window loses nothing; a busy one would start again from an empty
    window, so size it above the number of subjects active within one window).
    """

    __slots__ = ("_logs", "_max_keys")

    def __init__(self, max_keys: int = 100_000) -> None:
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        self._max_keys = max_keys

    def __len__(self) -> int:
        return len(self._logs)

    def acquire(self, checks: Sequence[Check], now: int | None = None) -> Decision:
        """Admit (and count) the request when every check passes, else count nothing.

        ``now`` in milliseconds; by default ``time.monotonic_ns()`` in milliseconds.
        """
        if now is None:
            now = monotonic_ns() // 1_000_000
        # Counted as the checks pass; a refusal takes back what this request counted so far,
        # so a request is counted in every log or in none.
        results: list[CheckResult] = []
        held: list[tuple[_Log, int, int] | None] = []
        for check in checks:
            log = self._current(check, now)
            cost = check.cost
            if log.used + cost > check.limit:
                for entry in reversed(held):
                    if entry is not None:
                        entry[0].take_back_newest()
                return Decision(False, tuple([self._refused(c, self._current(c, now), now) for c in checks]))
            if cost:
                stamps = log.stamps
                held.append((log, log.first + len(stamps), now))  # the entry's number, for adjust
                stamps.append(now)
                log.costs.append(cost)
                log.used += cost
                reset = check.window_ms  # the entry just added is the newest
            else:
                held.append(None)
                reset = log.reset_after(now, check.window_ms)
            remaining = check.limit - log.used
            results.append(CheckResult(remaining if remaining > 0 else 0, reset))
        return Decision(True, tuple(results), tuple(held))

    def _current(self, check: Check, now: int) -> _Log:
        """``check``'s log with the entries that have left the window dropped; the most recently used."""
        logs = self._logs
        log = logs.get(check.key)
        if log is None:
            log = logs[check.key] = _Log()
            if len(logs) > self._max_keys:
                logs.popitem(last=False)
            return log
        logs.move_to_end(check.key)
        stamps = log.stamps
        if stamps and stamps[0] <= now - check.window_ms:
            log.expire(now, check.window_ms)
        return log

    @staticmethod
    def _refused(check: Check, log: _Log, now: int) -> CheckResult:
        remaining = max(check.limit - log.used, 0)
        reset = log.reset_after(now, check.window_ms)
        if log.used + check.cost <= check.limit:
            return CheckResult(remaining, reset)
        if check.cost > check.limit:
            return CheckResult(remaining, reset, NEVER)
        return CheckResult(
            remaining, reset, log.retry_after(log.used + check.cost - check.limit, now, check.window_ms)
        )

    def adjust(self, decision: Decision, index: int, check: Check, delta: int, now: int) -> None:
        """Change the cost counted for check ``index`` of an admitted ``decision`` by ``delta``.

        A no-op once its entry has left the window: its cost no longer counts anywhere.
        """
        held = decision.handle[index] if decision.handle is not None else None
        if held is None:
            return
        log, number, stamp = held
        index = number - log.first
        if stamp <= now - check.window_ms or index < 0:  # it has left the window (or been dropped)
            return
        log.costs[index] += delta
        log.used += delta


__all__ = ["NEVER", "Check", "CheckResult", "Decision", "SlidingWindowLog"]
