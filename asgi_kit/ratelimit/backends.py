"""Where the counts live: the ``RateLimitBackend`` protocol and the one-process backend.

A backend answers :meth:`~RateLimitBackend.acquire` for all the checks of one request at once
(every check passes and is counted, or none is), and corrects a counted cost with
:meth:`~RateLimitBackend.adjust`, synchronously and without blocking (a token reservation is
settled from the usage ledger's synchronous ``settle``). :class:`InMemoryBackend` keeps the
counts in this process; :class:`~asgi_kit.ratelimit.RedisBackend` shares them across workers
and hosts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from asgi_kit._asgi.exceptions import StoreUnavailableError
from asgi_kit._asgi.options import check_callable, check_int
from asgi_kit.ratelimit.algorithm import Check, Decision, SlidingWindowLog


class RateLimitBackendError(StoreUnavailableError):
    """The backend could not answer (Redis unreachable, a timeout ...).

    The middleware applies its ``fail_open`` policy; the message never holds the
    backend's own error text (it may name a host or a password).
    """


@runtime_checkable
class RateLimitBackend(Protocol):
    """Counts shared by the requests a limit applies to."""

    async def acquire(self, checks: Sequence[Check]) -> Decision:
        """Admit and count the request when every check passes; raise :class:`RateLimitBackendError`."""
        ...

    def adjust(self, decision: Decision, index: int, check: Check, delta: int) -> None:
        """Correct check ``index`` of an admitted decision by ``delta`` units; never blocks, never raises."""
        ...

    async def aclose(self) -> None:
        """Finish pending corrections and release connections."""
        ...


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class InMemoryBackend:
    """Counts in this process: exact for one process (one worker), nothing shared.

    Args:
        max_keys: subjects kept at most (least recently used dropped first); see
            :class:`~asgi_kit.ratelimit.algorithm.SlidingWindowLog`.
        clock: milliseconds from a monotonic clock (tests inject one; ``time.monotonic_ns``
            in milliseconds by default).
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], int] | None = None) -> None:
        check_int("max_keys", max_keys, minimum=1)
        if clock is not None:
            check_callable("clock", clock)
        self._log = SlidingWindowLog(max_keys)
        self._clock = clock or _monotonic_ms
        # The middleware calls this instead of acquire when a backend has it: nothing here waits,
        # so no coroutine is needed; with the default clock it is the log's own method (the
        # kit.ratelimit.memory benchmark measures each call saved).
        self.acquire_nowait: Callable[[Sequence[Check]], Decision] = (
            self._log.acquire if clock is None else self._acquire_with_clock
        )

    def __repr__(self) -> str:
        return f"InMemoryBackend(keys={len(self._log)})"

    async def acquire(self, checks: Sequence[Check]) -> Decision:
        return self._log.acquire(checks, self._clock())

    def _acquire_with_clock(self, checks: Sequence[Check]) -> Decision:
        return self._log.acquire(checks, self._clock())

    def adjust(self, decision: Decision, index: int, check: Check, delta: int) -> None:
        self._log.adjust(decision, index, check, delta, self._clock())

    async def aclose(self) -> None:
        return None


__all__ = ["InMemoryBackend", "RateLimitBackend", "RateLimitBackendError"]
