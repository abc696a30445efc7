"""Budget reservations: reserve a call's worst case before it runs, settle to what it used.

A :class:`BudgetReservations` per process reserves each call's worst case (prompt estimate +
``max_tokens``) *before* the upstream call and refuses with :class:`ReservationRefusedError`
(the caller answers the budget 429) when the organization cannot cover it. Reservations are
taken from a **lease**: a chunk of budget the process takes from a :class:`BudgetLeaseStore`
(PostgreSQL: ``asgi_kit.database.PostgresLeaseStore``), so the database sees one statement per
chunk, not one per request: in the background when the lease runs low (a quarter of
``lease_tokens`` free), in the request when it cannot cover the reservation. Inside the process a reservation is a few integer updates with no
``await`` between the check and the take, so concurrent requests cannot both take the last
tokens.

The accounting, per organization and process (all in tokens)::

    held       what the store's lease row holds for this process
      = reserved    worst cases of the calls in flight
      + pending     settled, but maybe not in the store's ``used`` yet (``recording_delay``)
      + confirmed   settled and surely in ``used``: counted twice until the next statement drops them
      + free        what the next reservations take without a statement

The store grants a lease only while ``used + every live lease <= limit`` (see
:func:`~asgi_kit.budget.store.lease_grant`). A settled call's usage goes to ``used`` through the
usage writer (``record_usage`` or the ledger); it stays in the lease too (``pending``, then
``confirmed``) until this process's next statement (a top-up, the renewal every
``lease_ttl / 3``, the idle return), which drops the ``confirmed`` part from the lease. Until
then it counts twice: another request may be refused slightly early, never admitted past the
budget.

**The bound.** When every call reserves at least what it really uses, and every settled usage
reaches ``used`` within ``recording_delay`` seconds of :meth:`BudgetReservation.settle`, recorded usage
never exceeds the budget: the overrun is 0. Otherwise it is at most the sum of

* ``max(0, real - reserved)`` over the calls that used more than they reserved;
* the usage recorded later than ``recording_delay`` after its settle (it had left the lease);
* the ``keep`` of a holder whose lease expired while it still had calls in flight (a process
  paused or cut off from the store for longer than ``lease_ttl``), and usage that a killed
  process's spool replays after its lease expired;
* usage recorded by code that does not reserve at all;
* what was leased before the budget was lowered below ``used + leases``.

**A process killed by SIGKILL** never settles its calls in flight: their reservations stay
charged in its lease until the lease expires (at most ``lease_ttl`` after its last renewal);
then the budget frees itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from asgi_kit._asgi.exceptions import AsgiKitError
from asgi_kit._asgi.options import check_int, check_number, check_str
from asgi_kit.budget.store import BudgetLeaseStore

logger = logging.getLogger("asgi_kit.budget")

_MIN_TICK: Final = 0.05


class ReservationRefusedError(AsgiKitError):
    """The organization's budget cannot cover the reservation: answer the budget 429.

    ``requested`` is the worst case asked for, ``available`` what this process could still
    reserve for the organization (``0`` for an unknown organization), ``limit`` its budget.
    """

    def __init__(self, org_id: str, requested: int, available: int, limit: int | None) -> None:
        super().__init__(f"budget cannot cover {requested} tokens ({available} available)")
        self.org_id = org_id
        self.requested = requested
        self.available = available
        self.limit = limit


@dataclass(frozen=True, slots=True)
class LeaseSnapshot:
    """This process's view of its lease on one organization (see the module docstring)."""

    held: int
    reserved: int
    pending: int
    confirmed: int

    @property
    def free(self) -> int:
        return self.held - self.reserved - self.pending - self.confirmed


class _OrgLease:
    """One organization's lease in this process. Mutated only by the event loop's thread."""

    __slots__ = (
        "confirmed",
        "held",
        "last_used",
        "limit",
        "lock",
        "low_until",
        "pending",
        "pending_total",
        "refused_tokens",
        "refused_until",
        "renew_at",
        "reserved",
        "retired",
        "returning",
        "topping_up",
        "unlimited_until",
        "valid_until",
    )

    def __init__(self, now: float) -> None:
        self.held = 0
        self.reserved = 0
        self.confirmed = 0
        self.pending: deque[tuple[float, int]] = deque()
        self.pending_total = 0
        self.limit: int | None = None
        self.valid_until = -math.inf
        self.renew_at = math.inf
        self.refused_until = -math.inf
        self.refused_tokens = 0  # the smallest amount refused before refused_until
        self.unlimited_until = -math.inf
        self.last_used = now
        self.lock = asyncio.Lock()  # one statement at a time per organization and process
        self.returning = False  # an idle return is in flight: its free tokens are going away
        self.topping_up = False  # a background top-up is scheduled or running
        self.low_until = -math.inf  # no background top-up before then: the last one found no more
        self.retired = False  # dropped from the table: a waiter must start over

    @property
    def free(self) -> int:
        return self.held - self.reserved - self.pending_total - self.confirmed

    def promote(self, now: float) -> None:
        """Settled usage older than ``recording_delay`` is now surely in ``used``."""
        pending = self.pending
        while pending and pending[0][0] <= now:
            self.pending_total -= pending[0][1]
            self.confirmed += pending.popleft()[1]


class BudgetReservation:
    """One call's reserved worst case. Settle it exactly once with what the call really used.

    ``settle(tokens)`` is synchronous (safe in any ``finally``) and idempotent: the first call
    counts, later ones are ignored. ``release()`` is ``settle(0)``, for a call that never
    reached the upstream. A reservation that is never settled keeps its tokens charged until the
    process closes its reservations or dies and its lease expires.
    """

    __slots__ = ("_lease", "_owner", "_settled", "org_id", "tokens")

    def __init__(
        self, owner: BudgetReservations | None, lease: _OrgLease | None, org_id: str, tokens: int
    ) -> None:
        self._owner = owner
        self._lease = lease
        self._settled: int | None = None
        self.org_id = org_id
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"BudgetReservation(org_id={self.org_id!r}, tokens={self.tokens}, settled={self._settled})"

    @property
    def settled(self) -> int | None:
        """The settled usage, or ``None`` while the call is open."""
        return self._settled

    def settle(self, tokens: int) -> None:
        """Convert the reservation into ``tokens`` of real usage; the difference returns to the lease.

        Call it once the usage is recorded (``record_usage``) or handed to the ledger. A second
        call is ignored. More than reserved is accepted and taken from the lease, or owed to it.
        """
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise TypeError("tokens must be an int")
        if tokens < 0:
            raise ValueError("tokens must not be negative")
        if self._settled is not None:
            return
        self._settled = tokens
        if self._owner is not None and self._lease is not None:
            self._owner._settle(self._lease, self.tokens, tokens)

    def release(self) -> None:
        """Cancel the reservation of a call that never happened (``settle(0)``)."""
        self.settle(0)


def default_holder() -> str:
    """A holder id unique to this process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


# Runs per reservation, on the request's path: kept inline (options.check_int is for
# construction and also tests a maximum); the same rule, TypeError then ValueError.
def _tokens(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int number of tokens")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


class BudgetReservations:
    """Reserve worst cases from per-process leases of budget; see the module docstring for the bound.

    Create one per process and close it at shutdown (``aclose()``, or ``async with``), after the
    usage writer has flushed: closing returns the free part of every lease. Not thread-safe:
    use it from one event loop.

    Args:
        store: the :class:`~asgi_kit.budget.store.BudgetLeaseStore` (``PostgresLeaseStore`` in a
            fleet; ``InMemoryLeaseStore`` in one process).
        lease_tokens: tokens a statement takes beyond what the reservation at hand needs (at most
            half of what the budget has left, so chunks shrink near the end of a budget).
        lease_ttl: seconds a lease lives after its last statement; renewed every ``lease_ttl / 3``
            while the process holds it. A killed process's reservations stay charged this long.
        idle_return: seconds without a reservation after which the lease is returned;
            ``None`` keeps it until ``aclose()``.
        recording_delay: seconds after ``settle()`` by which the settled usage is surely in the
            store's ``used`` counter: ``0`` when it is recorded before ``settle()`` is called;
            the ledger's maximum flush delay when the ledger records it.
        refusal_ttl: seconds a refusal is reused, without a statement, for reservations at least
            as large (an over-budget organization costs a statement per ``refusal_ttl`` and
            refused size, not per request).
        default_max_tokens: the completion worst case :meth:`worst_case` uses when a request sets
            no ``max_tokens``.
        holder: this process's id in the store (default: host, pid and a random part).
        clock: monotonic seconds (tests inject one).
    """

    def __init__(
        self,
        store: BudgetLeaseStore,
        *,
        lease_tokens: int = 10_000,
        lease_ttl: float = 60.0,
        idle_return: float | None = 10.0,
        recording_delay: float = 0.0,
        refusal_ttl: float = 1.0,
        default_max_tokens: int = 4096,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(getattr(store, "lease", None)) or not callable(getattr(store, "release", None)):
            raise TypeError("store must be a BudgetLeaseStore (async lease(...) and release(...))")
        self._lease_tokens = check_int("lease_tokens", lease_tokens, minimum=1)
        self._lease_ttl = check_number("lease_ttl", lease_ttl, exclusive_minimum=0, maximum=3600)
        self._idle_return = (
            None
            if idle_return is None
            else check_number("idle_return", idle_return, minimum=0, maximum=86_400)
        )
        self._recording_delay = check_number("recording_delay", recording_delay, minimum=0, maximum=86_400)
        if self._recording_delay >= self._lease_ttl:
            # settled usage is held in the lease until it is surely recorded: the lease must outlive it
            raise ValueError("recording_delay must be shorter than lease_ttl")
        self._refusal_ttl = check_number("refusal_ttl", refusal_ttl, minimum=0, maximum=60)
        self._default_max_tokens = check_int("default_max_tokens", default_max_tokens, minimum=1)
        if holder is not None and len(check_str("holder", holder)) > 200:
            raise ValueError("holder must be a non-empty string of at most 200 characters")
        self.holder = holder or default_holder()
        self._store = store
        self._clock = clock
        self._leases: dict[str, _OrgLease] = {}
        ticks = [self._lease_ttl / 3]
        if self._idle_return is not None:
            ticks.append(self._idle_return / 2)
        self._tick = max(min(ticks), _MIN_TICK)
        # an entry with no lease (refused, unknown, unlimited) is forgotten after this long quiet
        self._forget_after = self._lease_ttl if self._idle_return is None else self._idle_return
        self._maintenance: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # background top-ups in flight
        self._low_water = self._lease_tokens // 4
        self._closed = False
        #: statements sent to the store (grants, renewals, returns): compare with reservations
        self.statements = 0
        self.reservations = 0

    def __repr__(self) -> str:
        return f"BudgetReservations(holder={self.holder!r}, lease_tokens={self._lease_tokens}, lease_ttl={self._lease_ttl:g})"

    async def __aenter__(self) -> BudgetReservations:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def worst_case(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """``prompt_tokens + max_tokens``, with ``default_max_tokens`` when the request sets none."""
        prompt = _tokens("prompt_tokens", prompt_tokens, minimum=0)
        completion = (
            self._default_max_tokens if max_tokens is None else _tokens("max_tokens", max_tokens, minimum=0)
        )
        return prompt + completion

    def snapshot(self, org_id: str) -> LeaseSnapshot:
        """This process's lease on ``org_id`` now (all zero when it holds none)."""
        lease = self._leases.get(org_id)
        if lease is None:
            return LeaseSnapshot(0, 0, 0, 0)
        lease.promote(self._clock())
        return LeaseSnapshot(lease.held, lease.reserved, lease.pending_total, lease.confirmed)

    async def reserve(self, org_id: str, tokens: int) -> BudgetReservation:
        """Reserve ``tokens`` (the call's worst case) for ``org_id``, before the upstream call.

        Costs no statement while this process's lease covers it; otherwise one statement tops the
        lease up (concurrent reservations wait for that one rather than send their own).

        Raises:
            ReservationRefusedError: the budget cannot cover ``tokens`` (or the organization is unknown).
            BudgetStoreUnavailableError: the lease had to be renewed and the store is down.
        """
        if not isinstance(org_id, str) or not org_id:
            raise ValueError("org_id must be a non-empty string")
        tokens = _tokens("tokens", tokens, minimum=0)
        if self._closed:
            raise RuntimeError("the reservations are closed")
        self._start_maintenance()
        while True:
            lease = self._leases.get(org_id)
            if lease is None:
                lease = self._leases[org_id] = _OrgLease(self._clock())
            reservation = self._take(org_id, lease, tokens)
            if reservation is not None:
                return reservation
            async with lease.lock:
                if lease.retired:
                    continue  # the maintenance dropped this entry while we waited: use a fresh one
                reservation = self._take(org_id, lease, tokens)
                if reservation is not None:
                    return reservation
                await self._sync(org_id, lease, extra=tokens)
                reservation = self._take(org_id, lease, tokens, fresh=True)
                if reservation is not None:
                    return reservation
                now = self._clock()
                if lease.refused_until <= now or tokens < lease.refused_tokens:
                    lease.refused_tokens = tokens
                lease.refused_until = now + self._refusal_ttl
                self._refuse(org_id, lease, tokens)

    def _take(
        self, org_id: str, lease: _OrgLease, tokens: int, *, fresh: bool = False
    ) -> BudgetReservation | None:
        """Take ``tokens`` from the lease with no ``await`` between the check and the take.

        ``None``: a statement is needed. Raises the refusal a recent statement already found.
        """
        now = self._clock()
        lease.last_used = now
        if lease.unlimited_until > now:
            self.reservations += 1
            return BudgetReservation(None, None, org_id, tokens)
        if lease.returning:
            return None
        lease.promote(now)
        if lease.valid_until > now and lease.free >= tokens:
            lease.reserved += tokens
            self.reservations += 1
            if lease.free < self._low_water and not lease.topping_up and lease.low_until <= now:
                # running low: top up in the background, so the next reservations need not wait
                lease.topping_up = True
                task = asyncio.get_running_loop().create_task(self._top_up(org_id, lease))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return BudgetReservation(self, lease, org_id, tokens)
        if not fresh and lease.refused_until > now and tokens >= lease.refused_tokens:
            self._refuse(org_id, lease, tokens)
        return None

    def _refuse(self, org_id: str, lease: _OrgLease, tokens: int) -> NoReturn:
        raise ReservationRefusedError(org_id, tokens, max(lease.free, 0), lease.limit)

    def _settle(self, lease: _OrgLease, reserved: int, used: int) -> None:
        now = self._clock()
        lease.reserved -= reserved
        lease.last_used = now
        if self._recording_delay > 0:
            lease.pending.append((now + self._recording_delay, used))
            lease.pending_total += used
        else:
            lease.confirmed += used

    async def _top_up(self, org_id: str, lease: _OrgLease) -> None:
        """Grow a lease that runs low (below a quarter of ``lease_tokens``) by a chunk."""
        try:
            async with lease.lock:
                if lease.retired or self._closed or lease.free >= self._low_water:
                    return
                await self._sync(org_id, lease, grow=True)
                if lease.free < self._low_water:  # the budget is nearly spent: stop asking for a while
                    lease.low_until = self._clock() + max(self._refusal_ttl, self._tick)
        except Exception as exc:  # a reservation that needs the tokens asks again and gets the error
            logger.warning("budget lease top-up failed (%s)", type(exc).__name__)
        finally:
            lease.topping_up = False

    async def _sync(
        self, org_id: str, lease: _OrgLease, *, extra: int = 0, grow: bool = False, shrink: bool = False
    ) -> None:
        """One statement: drop the confirmed usage, renew, and grow by ``extra`` + a chunk (or shrink).

        Called with ``lease.lock`` held. Reservations taken from ``free`` while the statement is in
        flight stay covered: ``keep`` includes ``free`` unless shrinking, and a shrink only runs
        with ``returning`` set, which sends every reservation to wait for the lock.
        """
        sent = self._clock()
        lease.promote(sent)
        confirmed = lease.confirmed
        free = lease.free
        keep = lease.reserved + lease.pending_total + (0 if shrink else max(free, 0))
        need = keep + max(extra - max(free, 0), 0) if extra else keep
        want = need + self._lease_tokens if extra or grow else need
        self.statements += 1
        if shrink and keep == 0:
            await self._store.release(org_id, self.holder)
            lease.confirmed -= confirmed
            lease.held = 0
            lease.valid_until = -math.inf
            return
        result = await self._store.lease(
            org_id, self.holder, keep=keep, need=need, want=want, ttl=self._lease_ttl
        )
        # the confirmed usage is now out of the lease; usage confirmed during the await is not
        lease.confirmed -= confirmed
        if result is None:  # unknown organization: nothing to lease, refuse
            lease.held, lease.limit = 0, 0
            lease.valid_until = -math.inf
            return
        lease.limit = result.limit
        if result.unlimited:
            lease.held = 0
            lease.unlimited_until = sent + self._lease_ttl / 3
            return
        lease.unlimited_until = -math.inf
        lease.held = result.tokens
        # measured from before the statement was sent: the store's expiry is later than ours
        lease.valid_until = sent + self._lease_ttl
        lease.renew_at = sent + self._lease_ttl / 3

    def _start_maintenance(self) -> None:
        if self._maintenance is None or self._maintenance.done():
            self._maintenance = asyncio.get_running_loop().create_task(
                self._maintain(), name=f"budget-leases-{self.holder}"
            )

    async def _maintain(self) -> None:
        """The background task: :meth:`maintain` every tick until :meth:`aclose`."""
        while True:
            await asyncio.sleep(self._tick)
            await self.maintain()

    async def maintain(self) -> None:
        """One pass of the background work: renew held leases every ``lease_ttl / 3``, return idle
        ones, forget empty ones. The background task runs it; tests with a fake clock call it."""
        for org_id, lease in list(self._leases.items()):
            if lease.lock.locked():
                continue  # a statement is in flight: it renews the lease
            try:
                await self._maintain_one(org_id, lease)
            except Exception as exc:  # the local expiry stops reservations if this keeps failing
                logger.warning("budget lease renewal failed (%s); retrying", type(exc).__name__)

    async def _maintain_one(self, org_id: str, lease: _OrgLease) -> None:
        now = self._clock()
        lease.promote(now)
        busy = lease.reserved > 0 or lease.pending_total > 0
        quiet = now - lease.last_used
        if not busy and lease.held == 0 and lease.unlimited_until <= now and quiet >= self._forget_after:
            lease.retired = True
            del self._leases[org_id]
        elif not busy and lease.held > 0 and self._idle_return is not None and quiet >= self._idle_return:
            async with lease.lock:
                lease.returning = True
                try:
                    await self._sync(org_id, lease, shrink=True)
                finally:
                    lease.returning = False
        elif lease.held > 0 and now >= lease.renew_at:
            async with lease.lock:
                await self._sync(org_id, lease)

    async def aclose(self) -> None:
        """Stop renewing and return every lease; the calls still open keep their tokens until expiry."""
        if self._closed:
            return
        self._closed = True
        for task in [self._maintenance, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for org_id, lease in list(self._leases.items()):
            if lease.held == 0:
                continue
            async with lease.lock:
                lease.returning = True
                try:
                    await self._sync(org_id, lease, shrink=True)
                except Exception as exc:  # it expires by itself within lease_ttl
                    logger.warning("budget lease not returned at close (%s)", type(exc).__name__)
        self._leases.clear()


__all__ = [
    "BudgetReservation",
    "BudgetReservations",
    "LeaseSnapshot",
    "ReservationRefusedError",
    "default_holder",
]
