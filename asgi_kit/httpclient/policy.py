"""Value objects for the HTTP client: the retry policy, the timeouts, the connection limits, the clock.

Small frozen, slotted dataclasses (as httpx's ``Timeout``/``Limits`` and stamina's options):
options that travel together, validated once when built, with a readable ``repr``.
:class:`VirtualClock` is the testing switch: a client built with it never really sleeps
between retries, and its deadline runs on virtual time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

import backoff

from asgi_kit._asgi.options import check_callable, check_int, check_number

if TYPE_CHECKING:
    from asgi_kit.httpclient.response import Response

#: Methods that RFC 9110 defines as idempotent: retried by default.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Statuses that mean "try again": timeout, rate limit, and the transient server errors.
RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    Attributes:
        max_retries: retries after the first attempt (``0`` disables retries).
        backoff_base: upper bound of the first wait; it doubles on each retry (full jitter:
            the actual wait is uniform in ``[0, bound]``).
        backoff_max: the bound stops growing here.
        max_retry_after: the longest ``Retry-After`` the client will honour; a longer one
            gives up at once with :class:`~asgi_kit.httpclient.RetryAfterTooLong`.
        retry_statuses: statuses worth another attempt.
        retry_methods: methods retried without an idempotency key.
        jitter: maps the exponential bound to the wait (``backoff.full_jitter``; pass
            ``lambda bound: bound`` for deterministic waits).
        give_up: optional predicate on a retryable response; ``True`` stops retrying it
            (the OpenAI client uses it for ``insufficient_quota``).
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    retry_methods: frozenset[str] = IDEMPOTENT_METHODS
    jitter: Callable[[float], float] = field(default=backoff.full_jitter, repr=False)
    give_up: Callable[[Response], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_int("max_retries", self.max_retries, minimum=0)
        check_number("backoff_base", self.backoff_base, minimum=0)
        check_number("backoff_max", self.backoff_max, minimum=0)
        check_number("max_retry_after", self.max_retry_after, minimum=0)
        check_callable("jitter", self.jitter)
        if self.give_up is not None:
            check_callable("give_up", self.give_up)
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))
        object.__setattr__(self, "retry_methods", frozenset(m.upper() for m in self.retry_methods))

    def backoff_schedule(self) -> Iterator[float]:
        """The waits between attempts: exponential bounds, jittered (one fresh schedule per call)."""
        bounds = backoff.expo(base=2, factor=self.backoff_base, max_value=self.backoff_max)
        next(bounds)  # backoff's generators are primed with one next() before the first value
        return (self.jitter(bound) for bound in bounds)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long one attempt may take.

    Attributes:
        attempt: the whole attempt, connect to last byte of the body (for a stream: until the
            response headers).
        connect: getting a connection (pool wait, DNS, TCP and TLS handshakes).
        read: the longest silence between two chunks of a streamed body (``None``: ``attempt``).
    """

    attempt: float = 30.0
    connect: float = 5.0
    read: float | None = None

    def __post_init__(self) -> None:
        check_number("timeout", self.attempt, exclusive_minimum=0)
        check_number("connect_timeout", self.connect, exclusive_minimum=0)
        if self.read is not None:
            check_number("read_timeout", self.read, exclusive_minimum=0)

    @property
    def stream_read(self) -> float:
        """The idle timeout applied between chunks of a streamed body."""
        return self.attempt if self.read is None else self.read


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection pool limits of the client's one ``aiohttp.ClientSession``.

    Attributes:
        max_connections: connections open at once (``0``: unlimited).
        max_connections_per_host: per host (``0``: unlimited).
        keepalive_expiry: seconds an idle connection is kept for reuse.
    """

    max_connections: int = 100
    max_connections_per_host: int = 0
    keepalive_expiry: float = 15.0

    def __post_init__(self) -> None:
        check_int("max_connections", self.max_connections, minimum=0)
        check_int("max_connections_per_host", self.max_connections_per_host, minimum=0)
        check_number("keepalive_expiry", self.keepalive_expiry, exclusive_minimum=0)


class Clock(Protocol):
    """Where the client reads time and how it waits: injected so tests never sleep."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (deadlines)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (``Retry-After`` HTTP-dates)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait between attempts."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock for tests: ``sleep`` returns at once and moves virtual time forward.

    ``sleeps`` records every wait the client asked for. ``sleep`` still yields to the event
    loop once, so a task cancelled during its backoff sees the cancellation there.
    """

    def __init__(self, *, monotonic: float = 1000.0, time: float = 1_700_000_000.0) -> None:
        self._monotonic = monotonic
        self._time = time
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The virtual monotonic time."""
        return self._monotonic

    def time(self) -> float:
        """The virtual wall-clock time."""
        return self._time

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._monotonic += seconds
        self._time += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, advance virtual time, and yield to the loop once."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(monotonic={self._monotonic!r}, time={self._time!r}, sleeps={len(self.sleeps)})"


__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "Clock",
    "Limits",
    "RetryPolicy",
    "SystemClock",
    "Timeouts",
    "VirtualClock",
]
