"""The in-process driver: call ASGI apps directly, interleaved, and time them honestly.

Method (also in ``docs/benchmarks.md``):

1. Every :class:`Case` gets one check request first: it must answer the expected status (and
   pass the case's own check of the body), so a layer answering 401 can never look cheap.
2. Each round runs one batch of ``batch`` requests per case, cases interleaved round-robin
   and the starting case rotated every round, so machine drift (other processes, thermal,
   frequency) lands on every case alike. The first ``warmup`` rounds are discarded.
3. Every request gets a fresh scope from the case (``Case.scope(index)``); building it costs
   the same in every case and cancels out in the overhead.
4. A batch is timed around the whole loop and divided by its size, after
   :data:`BATCH_WARMUP` untimed requests that put the case's own code and data back in the
   CPU caches (the previous batch was another case). Garbage collection is controlled the
   same way for every case: what setup allocated is frozen (``gc.freeze()``),
   ``gc.collect()`` runs before each batch, and the collector is then either left enabled
   (default: the allocations a layer makes cost it the collections they trigger) or
   disabled during the batch (``gc_mode="disable"``).
5. Per case: median and spread (IQR and MAD) of the per-request time over the rounds.
   Overhead = case median - its base's median (the base ran in the same rounds); the spread
   of the per-round paired difference is reported next to it.
6. Each batch is timed on two clocks at once: wall time (``perf_counter_ns``, the default
   ``clock``) and the process's CPU time (``process_time_ns``, every thread, so a batch span
   processor's export work counts). On a machine shared with other busy processes a long
   batch is preempted more often than a short one, which inflates wall time non-linearly;
   CPU time is immune to that. Both are in the result; ``clock`` picks the one reported first.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from asgi_kit._asgi.types import ASGIApp, Message, Scope

Progress = Callable[[int, int, str], None]
GCMode = Literal["collect", "disable"]
Clock = Literal["wall", "cpu"]
CLOCKS: Final = ("wall", "cpu")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """How much to measure: ``rounds`` kept rounds after ``warmup`` discarded ones, ``batch`` requests each."""

    rounds: int = 30
    warmup: int = 3
    batch: int = 200
    gc_mode: GCMode = "collect"
    clock: Clock = "wall"

    def __post_init__(self) -> None:
        for name in ("rounds", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        if self.gc_mode not in ("collect", "disable"):
            raise ValueError(f"gc_mode must be 'collect' or 'disable', got {self.gc_mode!r}")
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be 'wall' or 'cpu', got {self.clock!r}")

    @property
    def warm(self) -> int:
        """Untimed requests opening every batch.

        They let the batch measure this case with its own code and data in the CPU caches, as
        a server running one app does, rather than the cache misses left by the previous case
        (which would weigh most on the cheapest ones).
        """
        return min(BATCH_WARMUP, self.batch)

    @property
    def requests(self) -> int:
        """Requests each case is sent: every batch and its warm-up, then the check request."""
        return (self.warmup + self.rounds) * (self.batch + self.warm) + 1


BATCH_WARMUP: Final = 10
QUICK: Final = BenchConfig(rounds=3, warmup=1, batch=20)


@dataclass(frozen=True, slots=True)
class Case:
    """One app to time, and the requests it is sent.

    Attributes:
        name: how the case is reported.
        app: the ASGI app, built.
        scope: ``scope(index)`` is a fresh scope for the ``index``-th request; indexes run from
            0 to ``config.requests - 1``, the last one being the check request's.
        body: the request body every request carries.
        base: the case its overhead is measured against (``None``: no overhead).
        expect_status: the status every answer must have.
        check: given the check request's response body, a reason it is wrong, or ``None``.
        counter: a running count of something the app does (store queries, round trips); its
            increase over the kept rounds is reported per request.
    """

    name: str
    app: ASGIApp
    scope: Callable[[int], Scope]
    body: bytes = b""
    base: str | None = None
    expect_status: int = 200
    check: Callable[[bytes], str | None] | None = None
    counter: Callable[[], int] | None = None


class Timing:
    """What was measured of a case: per-request ns of each kept round on both clocks, or why not."""

    __slots__ = ("answered", "case", "clocks", "counted", "counted_requests", "note", "status")

    def __init__(self, case: Case) -> None:
        self.case = case
        self.status = "ok"
        self.note = ""
        #: the status the check request was answered with (0: it raised)
        self.answered = 0
        self.clocks: dict[str, dict[int, float]] = {clock: {} for clock in CLOCKS}
        self.counted = 0
        self.counted_requests = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def fail(self, status: str, note: str) -> None:
        self.status = status
        self.note = note

    def median(self, clock: str) -> float | None:
        samples = self.clocks[clock]
        return statistics.median(samples.values()) if samples else None


class Exchange:
    """One request's receive/send pair: the request body, then a disconnect after the response.

    The second ``receive`` blocks until the response is complete, as a server's does, so
    layers that listen for a disconnect (``BaseHTTPMiddleware``) behave as in production.
    """

    __slots__ = ("_body", "_done", "_requested", "status")

    def __init__(self, body: bytes = b"") -> None:
        self._body = body
        self._requested = False
        self._done: asyncio.Event | None = None
        self.status = 0

    async def receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
        elif kind == "http.response.body" and not message.get("more_body", False) and self._done is not None:
            self._done.set()


async def call_once(case: Case, index: int) -> tuple[int, bytes]:
    """One request of ``case`` with a recording send: its status and body."""
    exchange = Exchange(case.body)
    body = bytearray()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
        await exchange.send(message)

    await case.app(case.scope(index), exchange.receive, send)
    return exchange.status, bytes(body)


async def run_batch(case: Case, start: int, size: int, warm: int = 0) -> tuple[int, int, int]:
    """Run ``warm`` untimed requests, then time ``size``; returns (wall ns, process CPU ns, unexpected answers)."""
    app, scope, body, expected = case.app, case.scope, case.body, case.expect_status
    bad = 0
    for index in range(start, start + warm):
        exchange = Exchange(body)
        await app(scope(index), exchange.receive, exchange.send)
        if exchange.status != expected:
            bad += 1
    start += warm
    wall, cpu = time.perf_counter_ns, time.process_time_ns
    began_cpu = cpu()
    began = wall()
    for index in range(start, start + size):
        exchange = Exchange(body)
        await app(scope(index), exchange.receive, exchange.send)
        if exchange.status != expected:
            bad += 1
    ended = wall()
    return ended - began, cpu() - began_cpu, bad


def time_cases(
    cases: Sequence[Case],
    config: BenchConfig,
    loop: asyncio.AbstractEventLoop,
    progress: Progress | None = None,
) -> list[Timing]:
    """Check every case, then time them interleaved on ``loop``; one :class:`Timing` per case, in order."""
    timings = check_cases(cases, config, loop)
    time_checked(timings, config, loop, progress)
    return timings


def check_cases(cases: Sequence[Case], config: BenchConfig, loop: asyncio.AbstractEventLoop) -> list[Timing]:
    """Send every case its check request; a case answering wrong is failed with the reason."""
    timings = [Timing(case) for case in cases]
    for timing in timings:
        _check(timing, loop, config.requests - 1)
    return timings


def time_checked(
    timings: Sequence[Timing],
    config: BenchConfig,
    loop: asyncio.AbstractEventLoop,
    progress: Progress | None = None,
) -> None:
    """Time the cases that passed their check, interleaved, into their :class:`Timing`."""
    # Everything built so far (libraries, apps, credentials) moves to the permanent generation:
    # the collections before and during batches then scan only what the requests allocated,
    # the same way for every case, instead of the whole heap.
    gc.collect()
    gc.freeze()
    try:
        _measure(timings, loop, config, progress)
    finally:
        gc.unfreeze()


def _check(timing: Timing, loop: asyncio.AbstractEventLoop, index: int) -> None:
    case = timing.case
    try:
        status, body = loop.run_until_complete(call_once(case, index))
    except Exception as exc:
        timing.fail("error", f"check request raised {type(exc).__name__}: {exc}")
        return
    timing.answered = status
    if status != case.expect_status:
        timing.fail(
            "error", f"check request answered {status} (expected {case.expect_status}): {body[:200]!r}"
        )
        return
    reason = case.check(body) if case.check is not None else None
    if reason:
        timing.fail("error", f"check request: {reason}")


def _measure(
    timings: Sequence[Timing], loop: asyncio.AbstractEventLoop, config: BenchConfig, progress: Progress | None
) -> None:
    total_rounds = config.warmup + config.rounds
    warm = config.warm
    active = [timing for timing in timings if timing.ok]
    total = total_rounds * len(active)
    done = 0
    for round_index in range(total_rounds):
        active = [timing for timing in active if timing.ok]
        if not active:
            break
        shift = round_index % len(active)
        for timing in active[shift:] + active[:shift]:
            if not timing.ok:  # failed earlier in this round
                continue
            case = timing.case
            gc.collect()
            if config.gc_mode == "disable":
                gc.disable()
            try:
                before = case.counter() if case.counter is not None else 0
                elapsed, cpu_ns, bad = loop.run_until_complete(
                    run_batch(case, round_index * (config.batch + warm), config.batch, warm)
                )
                counted = case.counter() - before if case.counter is not None else 0
            except Exception as exc:
                timing.fail("error", f"raised during round {round_index}: {type(exc).__name__}: {exc}")
                continue
            finally:
                gc.enable()
            if bad:
                timing.fail(
                    "error",
                    f"{bad} of {config.batch + warm} requests did not answer {case.expect_status} "
                    f"in round {round_index}",
                )
            elif round_index >= config.warmup:
                timing.clocks["wall"][round_index] = elapsed / config.batch
                timing.clocks["cpu"][round_index] = cpu_ns / config.batch
                timing.counted += counted
                timing.counted_requests += config.batch + warm
            done += 1
            if progress is not None:
                progress(done, total, case.name)


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, IQR, MAD, min and max of ``values`` (ns)."""
    median = statistics.median(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = median
    return {
        "median_ns": median,
        "q1_ns": q1,
        "q3_ns": q3,
        "iqr_ns": q3 - q1,
        "mad_ns": statistics.median(abs(v - median) for v in values),
        "min_ns": min(values),
        "max_ns": max(values),
    }


def overheads(timings: Sequence[Timing], clock: str) -> dict[str, float]:
    """Each measured case's median minus its measured base's median, by case name."""
    medians = {t.case.name: m for t in timings if (m := t.median(clock)) is not None}
    return {
        name: medians[name] - medians[base]
        for t in timings
        if (name := t.case.name) in medians and (base := t.case.base) is not None and base in medians
    }


def _clock_summary(by_name: dict[str, Timing], timing: Timing, clock: str) -> dict[str, Any]:
    samples = timing.clocks[clock]
    row: dict[str, Any] = stats(list(samples.values()))
    base = by_name.get(timing.case.base) if timing.case.base else None
    if base is not None and base.clocks[clock]:
        base_samples = base.clocks[clock]
        base_median = statistics.median(base_samples.values())
        paired = [value - base_samples[r] for r, value in samples.items() if r in base_samples]
        row["overhead_ns"] = row["median_ns"] - base_median
        row["overhead_iqr_ns"] = stats(paired)["iqr_ns"] if paired else None
        row["ratio_to_base"] = row["median_ns"] / base_median
    return row


def summarize(timings: Sequence[Timing], clock: str) -> list[dict[str, Any]]:
    """One row per case: status, note, the statistics on ``clock``, and the same under the other clock's name."""
    other = "cpu" if clock == "wall" else "wall"
    by_name = {timing.case.name: timing for timing in timings}
    out: list[dict[str, Any]] = []
    for timing in timings:
        measured = bool(timing.clocks[clock])
        row: dict[str, Any] = {
            "name": timing.case.name,
            "base": timing.case.base,
            "status": timing.status if measured or not timing.ok else "error",
            "note": timing.note or ("" if measured else "no samples"),
            "n": len(timing.clocks[clock]),
        }
        if measured:
            row.update(_clock_summary(by_name, timing, clock))
            row[other] = _clock_summary(by_name, timing, other)
        out.append(row)
    return out


def environment(packages: Sequence[str] = ("asgi-kit",)) -> dict[str, Any]:
    """Where the numbers come from: interpreter, machine, load and the versions of ``packages``."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover - platforms without getloadavg
        load = []
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg": load,
        "packages": versions,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Finish ``loop``'s async generators and default executor, then close it."""
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


__all__ = [
    "BATCH_WARMUP",
    "CLOCKS",
    "QUICK",
    "BenchConfig",
    "Case",
    "Exchange",
    "Timing",
    "call_once",
    "check_cases",
    "close_loop",
    "environment",
    "overheads",
    "run_batch",
    "stats",
    "summarize",
    "time_cases",
    "time_checked",
]
