"""``UsageLedger``: settled usage, grouped into batches, durable when the sink is down.

Where it belongs: in the app that calls upstream models (a gateway), one per process, started
and closed in the lifespan. Handlers never write usage themselves: each upstream call runs
inside :meth:`UsageLedger.meter` (see :mod:`asgi_kit.budget.meter`), which settles it exactly
once and hands the record to :meth:`UsageLedger.record`.

The path of a record::

    record() ──> memory ──(one sink call per batch, within max_delay)──> sink
                   │                                                      ▲
                   └─(sink failed, or slower than spool_after)─> spool ───┘ replayed in order,
                                                                           with backoff

* :meth:`~UsageLedger.record` is synchronous and never waits, so it is safe in ``finally`` and
  ``__aexit__`` of a cancelled task.
* A background flusher sends at most ``max_batch`` records per :meth:`UsageSink.write_batch`
  call, at most ``max_delay`` seconds after the first of them was recorded (budgets see a
  settled call within that delay).
* No record stays in memory only for longer than ``spool_after`` seconds while the sink is
  failing or slow: it is appended to the spool (``fsync``) and replayed, oldest first, before
  newer records, with exponential backoff between attempts. A spool left by an earlier
  process is replayed at :meth:`~UsageLedger.start`.
* Records are keyed by ``request_id`` and sinks are idempotent on it: a replay (after a crash,
  or a write that succeeded after its timeout) never counts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from asgi_kit._asgi.options import check_int, check_number
from asgi_kit.budget.meter import MeteredCall
from asgi_kit.budget.record import UsageRecord
from asgi_kit.budget.spool import LedgerFullError, Spool
from asgi_kit.budget.store import BudgetStore
from asgi_kit.models import Usage

if TYPE_CHECKING:
    from asgi_kit.budget.meter import Reservation

logger = logging.getLogger("asgi_kit.budget")


@runtime_checkable
class UsageSink(Protocol):
    """Where settled usage goes (PostgreSQL: ``asgi_kit.database.PostgresUsageSink``).

    :meth:`write_batch` stores every record or raises; it is idempotent by ``request_id``: a
    record already stored is skipped, never counted twice. A record the sink can never store
    (an unknown organization) must not make it raise forever: drop or park it, and say so.
    """

    async def write_batch(self, records: Sequence[UsageRecord]) -> None: ...


class BudgetStoreSink:
    """A :class:`UsageSink` over any :class:`~asgi_kit.budget.BudgetStore` (the in-memory one).

    One ``record_usage`` call per record, so use it for in-memory and single-process setups;
    PostgreSQL has a one-statement-per-batch sink. Idempotency is by the last ``remember``
    request ids seen in this process. Records of an unknown organization are dropped
    (``dropped`` counts them, a warning names the organization).
    """

    def __init__(self, store: BudgetStore, *, remember: int = 1_000_000) -> None:
        self._store = store
        self._remember = check_int("remember", remember, minimum=1)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.calls = 0
        self.dropped = 0

    async def write_batch(self, records: Sequence[UsageRecord]) -> None:
        self.calls += 1
        for record in records:
            if record.request_id in self._seen:
                continue
            usage = Usage(
                org_id=record.org_id,
                user_id=record.user_id,
                api_key_id=record.api_key_id,
                model=record.model,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                created_at=record.created_at,
            )
            try:
                await self._store.record_usage(usage)
            except LookupError:
                self.dropped += 1
                logger.warning("usage of unknown organization %s dropped", record.org_id)
            self._seen[record.request_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """A snapshot of the ledger's backlog and counters (for ``/metrics`` and readiness).

    ``pending`` records are in memory only, ``spooled`` ones on disk; ``backlog`` is both.
    """

    pending: int
    spooled: int
    spool_bytes: int
    draining: int
    records: int
    written: int
    batches: int
    sink_calls: int
    sink_failures: int
    spool_appends: int
    spool_full: int
    spool_errors: int
    dropped: int
    drains: int
    drains_refused: int
    drain_timeouts: int

    @property
    def backlog(self) -> int:
        return self.pending + self.spooled


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    """Whether the ledger can keep records durable; ``detail`` is a fixed phrase."""

    ready: bool
    detail: str | None = None


class UsageLedger:
    """Settled usage on its way to a :class:`UsageSink`, never lost on the way.

    Args:
        sink: where batches go.
        spool_path: the spool file, or a directory in which each process claims one.
        max_batch: records per sink call at most.
        max_delay: seconds a record waits, at most, before its batch is sent.
        spool_after: seconds after which records still unwritten (the sink is slow or down)
            are appended to the spool.
        write_timeout: seconds one sink call may take before it counts as failed.
        retry_initial, retry_max: backoff between replays of the spool while the sink fails.
        max_spool_bytes: the spool's size limit (full: :class:`LedgerFullError`, counted).
        max_pending: records held in memory at most while the spool is full; past it a
            record is dropped, counted and logged.
        drain_timeout: seconds a stream whose client went away is still read to its usage.
        max_drains: such streams read at the same time, at most; others count what arrived.
    """

    def __init__(
        self,
        sink: UsageSink,
        *,
        spool_path: str | os.PathLike[str],
        max_batch: int = 500,
        max_delay: float = 0.1,
        spool_after: float = 1.0,
        write_timeout: float = 5.0,
        retry_initial: float = 0.2,
        retry_max: float = 10.0,
        max_spool_bytes: int = 64 << 20,
        max_pending: int = 100_000,
        drain_timeout: float = 30.0,
        max_drains: int = 64,
    ) -> None:
        if not callable(getattr(sink, "write_batch", None)):
            raise TypeError("sink must have an async write_batch(records) method")
        self._sink = sink
        self._spool = Spool(spool_path, max_bytes=max_spool_bytes)
        self._max_batch = check_int("max_batch", max_batch, minimum=1)
        self._max_delay = check_number("max_delay", max_delay, exclusive_minimum=0)
        self._spool_after = check_number("spool_after", spool_after, exclusive_minimum=0)
        self._write_timeout = check_number("write_timeout", write_timeout, exclusive_minimum=0)
        self._retry_initial = check_number("retry_initial", retry_initial, exclusive_minimum=0)
        self._retry_max = check_number("retry_max", retry_max, exclusive_minimum=0)
        if self._retry_max < self._retry_initial:
            raise ValueError("retry_max must be >= retry_initial")
        self._max_pending = check_int("max_pending", max_pending, minimum=1)
        self.drain_timeout = check_number("drain_timeout", drain_timeout, exclusive_minimum=0)
        self.max_drains = check_int("max_drains", max_drains, minimum=0)
        self._pending: deque[UsageRecord] = deque()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._drains: set[asyncio.Task[None]] = set()
        self._retry_at = 0.0
        self._inflight = 0  # records taken from memory for the sink call in progress
        self._backoff = self._retry_initial
        self._spool_failing = False
        self._closed = False
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "records",
                "written",
                "batches",
                "sink_calls",
                "sink_failures",
                "spool_appends",
                "spool_errors",
                "dropped",
                "drains",
                "drains_refused",
                "drain_timeouts",
            ),
            0,
        )

    def __repr__(self) -> str:
        return f"UsageLedger(sink={type(self._sink).__name__}, spool={self._spool!r})"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool (replaying what an earlier process left, first) and start the flusher."""
        if self._flusher is not None:
            return
        self._spool.open()
        if self._spool.count:
            logger.info("usage spool %s: replaying %d record(s)", self._spool.path, self._spool.count)
        self._closed = False
        self._flusher = asyncio.create_task(self._run(), name="asgi_kit.usage_ledger")
        self._wake.set()

    async def close(self, *, timeout: float | None = None) -> None:
        """Finish the drains (within their bound), flush, and spool whatever the sink did not take."""
        if self._flusher is None:
            return
        if self._drains:
            _, late = await asyncio.wait(set(self._drains), timeout=timeout or self.drain_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._closed = True
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        self._flusher = None
        if not self._spool.count and asyncio.get_running_loop().time() >= self._retry_at:
            while self._pending:
                batch = list(self._take(self._max_batch))
                if not await self._write(batch, None):
                    self._pending.extendleft(reversed(batch))
                    break
        self._spool_pending()
        if self._pending:
            logger.error("usage ledger closed with %d record(s) it could not keep", len(self._pending))
            self._counters["dropped"] += len(self._pending)
            self._pending.clear()
        self._spool.close()

    # -- recording ---------------------------------------------------------------------------

    def record(self, record: UsageRecord) -> None:
        """Queue ``record`` for the sink. Synchronous, never waits: safe while being cancelled."""
        if len(self._pending) >= self._max_pending:
            self._counters["dropped"] += 1
            if self._counters["dropped"] % 1000 == 1:  # the first, then one line per thousand
                logger.error(
                    "usage ledger backlog full (%d records in memory, spool full): %d record(s) dropped",
                    len(self._pending),
                    self._counters["dropped"],
                )
            return
        self._counters["records"] += 1
        self._pending.append(record)
        self._wake.set()
        if len(self._pending) >= self._max_batch:
            self._full.set()

    def meter(
        self,
        *,
        request_id: str,
        org_id: str | None,
        model: str,
        user_id: str | None = None,
        api_key_id: str | None = None,
        prompt_estimate: int = 0,
        reservation: Reservation | None = None,
    ) -> MeteredCall[Any]:
        """An async context manager around one upstream call; see :mod:`asgi_kit.budget.meter`."""
        return MeteredCall[Any](
            self,
            request_id=request_id,
            org_id=org_id,
            model=model,
            user_id=user_id,
            api_key_id=api_key_id,
            prompt_estimate=prompt_estimate,
            reservation=reservation,
        )

    def _start_drain(self, task: asyncio.Task[None], *, counted: bool = True) -> None:
        # Held here so the task is not garbage-collected, and so close() can wait for it.
        if counted:
            self._counters["drains"] += 1
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    def _can_drain(self) -> bool:
        if self._closed or len(self._drains) >= self.max_drains:
            self._counters["drains_refused"] += 1
            return False
        return True

    def _count_drain_timeout(self) -> None:
        self._counters["drain_timeouts"] += 1

    # -- observability -----------------------------------------------------------------------

    def stats(self) -> LedgerStats:
        """Backlog and counters, now."""
        return LedgerStats(
            pending=len(self._pending) + self._inflight,
            spooled=self._spool.count,
            spool_bytes=self._spool.size,
            draining=len(self._drains),
            spool_full=self._spool.full_errors,
            **self._counters,
        )

    def health(self) -> LedgerHealth:
        """Ready unless records cannot be made durable (spool full or failing) or it is not running."""
        if self._flusher is None or self._flusher.done():
            return LedgerHealth(False, "not running")
        if self._spool_failing:
            return LedgerHealth(False, "spool full" if self._spool.full_errors else "spool failing")
        if len(self._pending) >= self._max_pending:
            return LedgerHealth(False, "backlog full")
        return LedgerHealth(True)

    # -- the flusher -------------------------------------------------------------------------

    def _take(self, limit: int) -> list[UsageRecord]:
        pending = self._pending
        return [pending.popleft() for _ in range(min(limit, len(pending)))]

    def _spool_records(self, records: Sequence[UsageRecord]) -> int:
        """Append as many of ``records`` as the spool takes (one fsync); how many it took."""
        items = [record.to_json() for record in records]
        fits = self._spool.fit(items)
        try:
            self._spool.append(items[:fits])
            if fits < len(items):
                self._spool.append(items[fits:])  # raises LedgerFullError, and counts it
        except LedgerFullError as exc:
            if not self._spool_failing:
                logger.error("%s; %d record(s) kept in memory", exc, len(records) - fits)
            self._spool_failing = True
            self._counters["spool_appends"] += fits > 0
            return fits
        except OSError as exc:
            self._counters["spool_errors"] += 1
            if not self._spool_failing:
                logger.error("usage spool write failed: %s", type(exc).__name__)
            self._spool_failing = True
            return 0
        if self._spool_failing:
            logger.info("usage spool writable again")
        self._spool_failing = False
        self._counters["spool_appends"] += 1
        return fits

    def _spool_pending(self) -> None:
        """Move every record in memory to the spool (one append, one fsync), if it has room."""
        if self._pending:
            for _ in range(self._spool_records(list(self._pending))):
                self._pending.popleft()

    async def _write(self, records: list[UsageRecord], spooled: list[bool] | None) -> bool:
        """One sink call within ``write_timeout``. While it is slower than ``spool_after``, the
        records waiting in memory (and ``records`` themselves unless already spooled, marked in
        ``spooled``) go to the spool, so a crash while the sink hangs loses nothing."""
        self._counters["sink_calls"] += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._write_timeout
        task = asyncio.create_task(self._sink.write_batch(records))
        wait = self._spool_after
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=max(min(wait, deadline - loop.time()), 0))
                if done:
                    break
                if loop.time() >= deadline:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    raise TimeoutError
                if (
                    spooled is not None
                    and not spooled[0]
                    and self._spool.fit([r.to_json() for r in records]) == len(records)
                ):
                    self._spool_records(records)
                    spooled[0] = True
                    self._inflight = 0  # counted by the spool now
                self._spool_pending()
                wait = self._max_delay
            task.result()
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as exc:  # any sink failure: the records are kept and retried
            self._counters["sink_failures"] += 1
            if self._backoff == self._retry_initial:
                logger.warning(
                    "usage sink failed (%s): %d record(s) spooled and retried",
                    type(exc).__name__,
                    len(records),
                )
            return False
        self._counters["batches"] += 1
        self._counters["written"] += len(records)
        return True

    async def _wait(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending and not self._spool.count:
                self._wake.clear()
                await self._wake.wait()
            if self._pending and len(self._pending) < self._max_batch:
                # Let the batch fill for up to max_delay: one sink call for many records.
                self._full.clear()
                try:
                    async with asyncio.timeout(self._max_delay):
                        await self._full.wait()
                except TimeoutError:
                    pass
            if self._spool.count or loop.time() < self._retry_at:
                await self._replay(loop)
            else:
                await self._flush_memory()

    async def _flush_memory(self) -> None:
        batch = self._take(self._max_batch)
        if not batch:
            return
        spooled = [False]
        self._inflight = len(batch)
        try:
            ok = await self._write(batch, spooled)
        except asyncio.CancelledError:  # close() while writing: the batch is not lost
            if not spooled[0]:
                self._pending.extendleft(reversed(batch))
            raise
        finally:
            self._inflight = 0
        if ok:
            self._backoff = self._retry_initial
            if not self._pending:
                self._spool_failing = False  # nothing waits for the spool any more
            if spooled[0]:
                # It went to the spool while the sink was slow; the spool was empty before,
                # so the batch is the spool's head.
                self._spool.ack(len(batch))
            return
        self._backoff_after_failure()
        if not spooled[0]:
            kept = self._spool_records(batch)
            self._pending.extendleft(reversed(batch[kept:]))

    async def _replay(self, loop: asyncio.AbstractEventLoop) -> None:
        # Degraded: the spool is the head of the queue, so new records join it, in order.
        self._spool_pending()
        delay = self._retry_at - loop.time()
        if delay > 0:
            self._wake.clear()
            await self._wait(min(delay, self._max_delay))
            return
        if not self._spool.count:  # the spool could not take them: straight from memory
            await self._flush_memory()
            return
        batch = [UsageRecord.from_json(item) for item in self._spool.peek(self._max_batch)]
        if await self._write(batch, None):
            self._spool.ack(len(batch))
            if not self._pending:
                self._spool_failing = False
            if self._backoff != self._retry_initial and not self._spool.count:
                logger.info("usage sink back: spool replayed")
            self._backoff = self._retry_initial
            self._retry_at = 0.0
        else:
            self._backoff_after_failure()

    def _backoff_after_failure(self) -> None:
        self._retry_at = asyncio.get_running_loop().time() + self._backoff
        self._backoff = min(self._backoff * 2, self._retry_max)


__all__ = [
    "BudgetStoreSink",
    "LedgerFullError",
    "LedgerHealth",
    "LedgerStats",
    "UsageLedger",
    "UsageRecord",
    "UsageSink",
]
