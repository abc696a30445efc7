"""UsageLedger: batching, bounded delay, spooling when the sink fails or hangs, replay, full spool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from asgi_kit.budget import BudgetStoreSink, InMemoryBudgetStore, UsageLedger, UsageSink
from tests.budget.ledger_helpers import ListSink, record


async def until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def fast_ledger(sink: UsageSink, path: Path, **options: Any) -> UsageLedger:
    defaults: dict[str, Any] = {
        "max_delay": 0.02,
        "spool_after": 0.1,
        "write_timeout": 0.5,
        "retry_initial": 0.05,
        "retry_max": 0.1,
    }
    return UsageLedger(sink, spool_path=path, **{**defaults, **options})


async def test_batches_are_fewer_than_records(tmp_path: Path) -> None:
    """300 records recorded together reach the sink in far fewer calls (one per batch)."""
    sink = ListSink()
    ledger = fast_ledger(sink, tmp_path, max_batch=100)
    await ledger.start()
    for n in range(300):
        ledger.record(record(n))
    await until(lambda: len(sink.records) == 300)
    assert sink.calls <= 4
    stats = ledger.stats()
    assert stats.records == stats.written == 300 and stats.batches == sink.calls and stats.backlog == 0
    await ledger.close()


async def test_a_lone_record_is_written_within_max_delay(tmp_path: Path) -> None:
    """One record is sent after at most max_delay (plus scheduling), not when a batch fills."""
    sink = ListSink()
    ledger = fast_ledger(sink, tmp_path, max_delay=0.05)
    await ledger.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    ledger.record(record(1))
    await until(lambda: sink.records)
    assert loop.time() - started < 0.5
    assert ledger.health().ready
    await ledger.close()


async def test_failing_sink_spools_then_replays_once(tmp_path: Path) -> None:
    """While the sink fails, records go to the spool; when it is back they are written, each once."""
    sink = ListSink()
    sink.fail = True
    ledger = fast_ledger(sink, tmp_path)
    await ledger.start()
    for n in range(50):
        ledger.record(record(n))
    await until(lambda: ledger.stats().spooled == 50)
    assert ledger.stats().sink_failures >= 1 and ledger.stats().pending == 0
    for n in range(50, 60):  # records arriving during the outage join the spool, in order
        ledger.record(record(n))
    await until(lambda: ledger.stats().spooled == 60)
    sink.fail = False
    await until(lambda: len(sink.records) == 60)
    assert sink.order == [f"r{n}" for n in range(60)]
    assert ledger.stats().backlog == 0
    await ledger.close()


async def test_hanging_sink_spools_after_spool_after(tmp_path: Path) -> None:
    """A sink call slower than spool_after gets the waiting records spooled before it returns."""
    sink = ListSink()
    sink.hang = asyncio.Event()
    ledger = fast_ledger(sink, tmp_path, write_timeout=5.0)
    await ledger.start()
    for n in range(10):
        ledger.record(record(n))
    await until(lambda: ledger.stats().spooled == 10)  # durable while the call still hangs
    ledger.record(record(10))
    await until(lambda: ledger.stats().spooled == 11)
    sink.hang.set()
    sink.hang = None
    await until(lambda: ledger.stats().backlog == 0)
    assert sorted(sink.records) == sorted(f"r{n}" for n in range(11))
    await ledger.close()


async def test_write_timeout_counts_as_failure(tmp_path: Path) -> None:
    """A sink call past write_timeout is cancelled and its batch retried from the spool."""
    sink = ListSink()
    sink.hang = asyncio.Event()
    ledger = fast_ledger(sink, tmp_path, write_timeout=0.15, spool_after=0.05)
    await ledger.start()
    ledger.record(record(1))
    await until(lambda: ledger.stats().sink_failures >= 1)
    sink.hang = None
    await until(lambda: ledger.stats().backlog == 0)
    assert list(sink.records) == ["r1"]
    await ledger.close()


async def test_spool_left_by_an_earlier_process_is_replayed_first(tmp_path: Path) -> None:
    """A new ledger on the same spool writes what the last one left before its own records."""
    down = ListSink()
    down.fail = True
    first = fast_ledger(down, tmp_path)
    await first.start()
    for n in range(20):
        first.record(record(n))
    await until(lambda: first.stats().spooled == 20)
    await first.close()  # the sink is still down: everything stays spooled
    sink = ListSink()
    second = fast_ledger(sink, tmp_path)
    await second.start()
    assert second.stats().spooled == 20
    second.record(record(99))
    await until(lambda: len(sink.records) == 21)
    assert sink.order == [*(f"r{n}" for n in range(20)), "r99"]
    await second.close()


async def test_replay_never_counts_twice(tmp_path: Path) -> None:
    """Records replayed after they were already written are skipped by the idempotent sink."""
    sink = ListSink()
    ledger = fast_ledger(sink, tmp_path)
    await ledger.start()
    ledger.record(record(1))
    ledger.record(record(1))  # the same request settled twice (a replayed spool)
    await until(lambda: ledger.stats().backlog == 0)
    assert sink.tokens == 3 and sink.duplicates == 1
    await ledger.close()


async def test_full_spool_is_an_error_and_a_counter(tmp_path: Path) -> None:
    """When the spool is full, records stay in memory, spool_full counts, readiness fails; past
    max_pending records are dropped and counted. The sink's return drains everything."""
    sink = ListSink()
    sink.fail = True
    ledger = fast_ledger(sink, tmp_path, max_spool_bytes=1024, max_pending=40)
    await ledger.start()
    for n in range(30):
        ledger.record(record(n))
    await until(lambda: ledger.stats().spool_full >= 1)
    assert ledger.health().ready is False and ledger.health().detail == "spool full"
    stats = ledger.stats()
    assert stats.pending + stats.spooled == 30 and stats.pending > 0
    for n in range(30, 60):
        ledger.record(record(n))
    assert ledger.stats().dropped > 0
    sink.fail = False
    await until(lambda: ledger.stats().backlog == 0)
    assert len(sink.records) == 60 - ledger.stats().dropped
    await until(lambda: ledger.health().ready)
    await ledger.close()


async def test_close_flushes_or_spools(tmp_path: Path) -> None:
    """close() writes what is in memory; with the sink down it spools it for the next start."""
    sink = ListSink()
    ledger = fast_ledger(sink, tmp_path, max_delay=10.0)
    await ledger.start()
    ledger.record(record(1))
    await ledger.close()
    assert list(sink.records) == ["r1"]
    assert not ledger.health().ready
    down = ListSink()
    down.fail = True
    again = fast_ledger(down, tmp_path, max_delay=10.0)
    await again.start()
    again.record(record(2))
    await again.close()
    third = fast_ledger(sink, tmp_path)
    await third.start()
    assert third.stats().spooled == 1
    await until(lambda: "r2" in sink.records)
    await third.close()


async def test_budget_store_sink_feeds_the_in_memory_store(tmp_path: Path) -> None:
    """The in-memory sink adds each request's tokens once and drops unknown organizations."""
    store = InMemoryBudgetStore([("org", 1000)])
    sink = BudgetStoreSink(store)
    ledger = fast_ledger(sink, tmp_path)
    await ledger.start()
    ledger.record(record(1, tokens=10))
    ledger.record(record(1, tokens=10))
    ledger.record(record(2, org="nope"))
    await until(lambda: ledger.stats().backlog == 0)
    state = await store.get_budget("org")
    assert state is not None and state.used == 10 and sink.dropped == 1
    await ledger.close()
    with pytest.raises(ValueError, match="remember"):
        BudgetStoreSink(store, remember=0)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"max_batch": 0}, ValueError, "max_batch"),
        ({"max_batch": 1.5}, TypeError, "max_batch"),
        ({"max_delay": 0}, ValueError, "max_delay"),
        ({"max_delay": "1"}, TypeError, "max_delay"),
        ({"spool_after": float("nan")}, ValueError, "spool_after"),
        ({"retry_initial": 2.0, "retry_max": 1.0}, ValueError, "retry_max"),
        ({"max_drains": -1}, ValueError, "max_drains"),
        ({"max_spool_bytes": 10}, ValueError, "max_bytes"),
    ],
)
def test_options_are_validated(tmp_path: Path, options: dict[str, Any], error: type, match: str) -> None:
    """Bad options raise TypeError/ValueError naming the option, at construction."""
    with pytest.raises(error, match=match):
        UsageLedger(ListSink(), spool_path=tmp_path, **options)


def test_sink_must_have_write_batch(tmp_path: Path) -> None:
    """A sink without write_batch is refused at construction."""
    with pytest.raises(TypeError, match="sink"):
        UsageLedger(object(), spool_path=tmp_path)  # type: ignore[arg-type]
    assert "ListSink" in repr(UsageLedger(ListSink(), spool_path=tmp_path))


def test_public_ledger_names() -> None:
    """asgi_kit.budget exports the ledger's public names."""
    import asgi_kit.budget as budget

    assert {
        "BudgetStoreSink",
        "ClientDisconnected",
        "LedgerFullError",
        "LedgerHealth",
        "LedgerStats",
        "MeteredCall",
        "Reservation",
        "Spool",
        "SpoolLockedError",
        "UsageLedger",
        "UsageRecord",
        "UsageSink",
    } <= set(budget.__all__)
