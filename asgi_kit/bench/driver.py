"""The in-process driver: call each variant's ASGI app directly and time it honestly.

Method (also in ``docs/benchmarks.md``):

1. Every selected variant is built once; one request per variant is checked first (it must
   answer 200 with the expected body, so a misconfigured layer answering 401 can never look
   cheap). A variant whose layer or peer cannot be imported (or whose PostgreSQL cannot be
   reached) is skipped with a note. Async builders are awaited on the event loop the requests
   then run on (a database pool belongs to the loop that opened it); what they opened is
   closed on that loop at the end (``BenchContext.aclose``).
2. Each round runs one batch of ``batch`` requests per variant, variants interleaved
   round-robin and the starting variant rotated every round, so machine drift (other
   processes, thermal, frequency) lands on every variant alike. The first ``warmup`` rounds
   are discarded.
3. Every request gets a fresh scope (``GET /items/42?verbose=1`` with an
   ``Authorization: Bearer <HS256 JWT>`` and four usual headers). "Cold" variants get a
   distinct pre-minted token per request, "cached" ones reuse one token, "api_key" ones send
   the run's one API key as the bearer credential; the same sequence is used by every variant
   of a mode. Building the scope costs the same in every variant and cancels out in the
   overhead.
4. A batch is timed with ``time.perf_counter_ns`` around the whole loop and divided by its
   size, after ``BATCH_WARMUP`` untimed requests that put the variant's own code and data
   back in the CPU caches (the previous batch was another variant). Garbage collection is controlled the same way for every variant: what setup
   allocated is frozen (``gc.freeze()``), ``gc.collect()`` runs before each batch, and the
   collector is then either left enabled (default: the allocations a layer makes cost it
   the collections they trigger) or disabled during the batch (``gc_mode="disable"``).
5. Per variant: median and spread (IQR and MAD) of the per-request time over the rounds.
   Overhead = variant median - its base's median (the base ran in the same rounds); the
   spread of the per-round paired difference is reported next to it.
6. Each batch is timed on two clocks at once: wall time (``perf_counter_ns``, the default
   ``clock``) and the process's CPU time (``process_time_ns``, every thread, so a batch span
   processor's export work counts). On a machine shared with other busy processes a long
   batch is preempted more often than a short one, which inflates wall time non-linearly;
   CPU time is immune to that. Both are in the result; ``clock`` picks the one the table and
   the targets use.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from asgi_kit._asgi.principal import Credentials, Principal
from asgi_kit._asgi.types import ASGIApp, Message
from asgi_kit.bench import RESULT_SCHEMA
from asgi_kit.bench._apps import BODY, ROLE, SkipVariant, api_key_values, bearer_values, request_scope
from asgi_kit.bench.variants import TARGETS, VARIANTS, BenchContext, Target, TokenMode, Variant

Progress = Callable[[int, int, str], None]
GCMode = Literal["collect", "disable"]
Clock = Literal["wall", "cpu"]

PACKAGES: Final = (
    "asgi-kit",
    "starlette",
    "fastapi",
    "uvicorn",
    "PyJWT",
    "cryptography",
    "prometheus-client",
    "python-json-logger",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-asgi",
    "asgi-correlation-id",
    "starlette-exporter",
    "prometheus-fastapi-instrumentator",
    "rich",
    "matplotlib",
)


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """How much to measure. ``only`` holds ``fnmatch`` patterns on variant names."""

    rounds: int = 30
    warmup: int = 3
    batch: int = 200
    gc_mode: GCMode = "collect"
    clock: Clock = "wall"
    only: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("rounds", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        if self.gc_mode not in ("collect", "disable"):
            raise ValueError(f"gc_mode must be 'collect' or 'disable', got {self.gc_mode!r}")
        if self.clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', got {self.clock!r}")


QUICK: Final = BenchConfig(rounds=3, warmup=1, batch=20)
BATCH_WARMUP: Final = 10

_PRINCIPAL: Final = Principal(user_id="user-0", org_id="org-0", role=ROLE, auth_method="jwt")
_PRINCIPAL_SCOPE: Final = {"user": _PRINCIPAL, "auth": Credentials(scopes=(), method="jwt")}


class _Exchange:
    """One request's receive/send pair: a body-less request, then a disconnect after the response.

    The second ``receive`` blocks until the response is complete, as a server's does, so
    layers that listen for a disconnect (``BaseHTTPMiddleware``) behave as in production.
    """

    __slots__ = ("_done", "_requested", "status")

    def __init__(self) -> None:
        self._requested = False
        self._done: asyncio.Event | None = None
        self.status = 0

    async def receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
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


class _Run:
    """A variant being measured: its app, its token sequence and its samples."""

    def __init__(self, variant: Variant) -> None:
        self.variant = variant
        self.app: ASGIApp | None = None
        self.status = "ok"
        self.note = ""
        # Per-request ns of each kept round, on both clocks: {"wall": {round: ns}, "cpu": {...}}.
        self.clocks: dict[str, dict[int, float]] = {"wall": {}, "cpu": {}}
        self.extras = _PRINCIPAL_SCOPE if variant.principal else None
        # Store queries made by the kept rounds' requests, for variants that count them.
        self.counter: Callable[[], int] | None = None
        self.queries = 0
        self.queried_requests = 0

    def fail(self, status: str, note: str) -> None:
        self.status = status
        self.note = note
        self.app = None


async def _one(app: ASGIApp, authorization: bytes, extras: dict[str, Any] | None) -> tuple[int, bytes]:
    """One request with a recording send: the check run before timing."""
    exchange = _Exchange()
    body = bytearray()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
        await exchange.send(message)

    await app(request_scope(authorization, extras), exchange.receive, send)
    return exchange.status, bytes(body)


async def _batch(
    app: ASGIApp, auth: Sequence[bytes], start: int, size: int, extras: dict[str, Any] | None, warm: int = 0
) -> tuple[int, int, int]:
    """Run ``warm`` untimed requests, then time ``size``; returns (wall ns, process CPU ns, non-200 answers)."""
    bad = 0
    for index in range(start, start + warm):
        exchange = _Exchange()
        await app(request_scope(auth[index], extras), exchange.receive, exchange.send)
        if exchange.status != 200:
            bad += 1
    start += warm
    wall, cpu = time.perf_counter_ns, time.process_time_ns
    began_cpu = cpu()
    began = wall()
    for index in range(start, start + size):
        exchange = _Exchange()
        await app(request_scope(auth[index], extras), exchange.receive, exchange.send)
        if exchange.status != 200:
            bad += 1
    ended = wall()
    return ended - began, cpu() - began_cpu, bad


def _warm(config: BenchConfig) -> int:
    # A few untimed requests open every batch, so the batch measures this variant with its own
    # code and data in the CPU caches, as a server running one app does, rather than the
    # cache misses left by the previous variant (which would weigh most on the cheapest ones).
    return min(BATCH_WARMUP, config.batch)


def select_variants(patterns: Sequence[str], variants: Sequence[Variant] = VARIANTS) -> tuple[Variant, ...]:
    """The variants matching any pattern, plus the bases and floor they are compared with."""
    if not patterns:
        return tuple(variants)
    chosen = {v.name for v in variants if any(fnmatch.fnmatchcase(v.name, p) for p in patterns)}
    if not chosen:
        raise ValueError(f"--only {','.join(patterns)!r} matches no variant")
    by_name = {v.name: v for v in variants}
    for name in list(chosen):
        base = by_name[name].base
        while base is not None and base not in chosen:  # and the base's base
            chosen.add(base)
            base = by_name[base].base
        if ".excluded" in name:
            chosen.update(n for n in ("floor.passthrough", "floor.passthrough.x10") if n in by_name)
    return tuple(v for v in variants if v.name in chosen)


def environment() -> dict[str, Any]:
    """Where the numbers come from: interpreter, machine, load and package versions."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
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


def _stats(values: Sequence[float]) -> dict[str, float]:
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


def _build(runs: dict[str, _Run], ctx: BenchContext, loop: asyncio.AbstractEventLoop) -> None:
    for run in runs.values():
        base = runs.get(run.variant.base) if run.variant.base else None
        if base is not None and base.status != "ok":
            run.fail("skipped", f"its base {base.variant.name} is unavailable")
            continue
        try:
            built = run.variant.build(ctx)
            run.app = loop.run_until_complete(built) if isinstance(built, Awaitable) else built
            run.counter = ctx.store_query_counter(run.app)
        except SkipVariant as exc:
            run.fail("skipped", str(exc))
        except Exception as exc:  # a layer changed shape: report it, measure the others
            run.fail("error", f"build failed: {type(exc).__name__}: {exc}")


def _credentials(mode: TokenMode, count: int, ctx: BenchContext) -> list[bytes]:
    """``count`` Authorization values for a token mode (the same sequence for every variant of it)."""
    if mode == "api_key":
        return api_key_values(count, ctx.api_key())
    return bearer_values(count, cold=mode == "cold")


def _check(runs: dict[str, _Run], loop: asyncio.AbstractEventLoop, pools: dict[str, list[bytes]]) -> None:
    for run in runs.values():
        if run.app is None:
            continue
        try:
            status, body = loop.run_until_complete(_one(run.app, pools[run.variant.tokens][-1], run.extras))
        except Exception as exc:
            run.fail("error", f"check request raised {type(exc).__name__}: {exc}")
            continue
        if status != 200 or body.replace(b" ", b"") != BODY:
            run.fail("error", f"check request answered {status}: {body[:200]!r}")


def run_inprocess(
    config: BenchConfig = BenchConfig(),
    *,
    variants: Sequence[Variant] | None = None,
    targets: Sequence[Target] = TARGETS,
    progress: Progress | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Measure the variants and return the result document (see ``docs/benchmarks.md``).

    ``database_url`` is the PostgreSQL of the ``*.postgres`` variants (``None`` skips them).
    """
    selected = select_variants(config.only, VARIANTS if variants is None else variants)
    started = time.perf_counter()
    env = environment()
    ctx = BenchContext(database_url=database_url)
    loop = asyncio.new_event_loop()
    runs = {v.name: _Run(v) for v in selected}
    per_variant = (config.warmup + config.rounds) * (config.batch + _warm(config))
    try:
        _build(runs, ctx, loop)
        # One extra credential at the end of each pool for the check request, so timed
        # requests never see a token the check already verified.
        modes = {run.variant.tokens for run in runs.values() if run.app is not None}
        pools: dict[str, list[bytes]] = {mode: _credentials(mode, per_variant + 1, ctx) for mode in modes}
        _check(runs, loop, pools)
        # Everything built so far (libraries, apps, token pools) moves to the permanent
        # generation: the collections before and during batches then scan only what the
        # requests allocated, the same way for every variant, instead of the whole heap.
        gc.collect()
        gc.freeze()
        _measure(runs, loop, pools, config, progress)
    finally:
        gc.unfreeze()
        loop.run_until_complete(ctx.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    env["loadavg_after"] = environment()["loadavg"]
    env["database"] = ctx.database_info
    return {
        "schema": RESULT_SCHEMA,
        "mode": "in-process",
        "config": {**asdict(config), "only": list(config.only)},
        "environment": env,
        "duration_s": round(time.perf_counter() - started, 3),
        "variants": _summaries(runs, config.clock),
        "targets": _targets(runs, targets, config.clock),
        "e2e": None,
    }


def _measure(
    runs: dict[str, _Run],
    loop: asyncio.AbstractEventLoop,
    pools: dict[str, list[bytes]],
    config: BenchConfig,
    progress: Progress | None,
) -> None:
    total_rounds = config.warmup + config.rounds
    active = [run for run in runs.values() if run.app is not None]
    total = total_rounds * len(active)
    done = 0
    for round_index in range(total_rounds):
        active = [run for run in active if run.app is not None]
        if not active:
            break
        shift = round_index % len(active)
        for run in active[shift:] + active[:shift]:
            app = run.app
            if app is None:  # failed earlier in this round
                continue
            gc.collect()
            if config.gc_mode == "disable":
                gc.disable()
            try:
                warm = _warm(config)
                start = round_index * (config.batch + warm)
                pool = pools[run.variant.tokens]
                queries_before = run.counter() if run.counter is not None else 0
                elapsed, cpu_ns, bad = loop.run_until_complete(
                    _batch(app, pool, start, config.batch, run.extras, warm)
                )
                queries = run.counter() - queries_before if run.counter is not None else 0
            except Exception as exc:
                run.fail("error", f"raised during round {round_index}: {type(exc).__name__}: {exc}")
                continue
            finally:
                gc.enable()
            if bad:
                run.fail(
                    "error", f"{bad} of {config.batch} requests did not answer 200 in round {round_index}"
                )
            elif round_index >= config.warmup:
                run.clocks["wall"][round_index] = elapsed / config.batch
                run.clocks["cpu"][round_index] = cpu_ns / config.batch
                run.queries += queries
                run.queried_requests += config.batch + warm
            done += 1
            if progress is not None:
                progress(done, total, run.variant.name)


def _overheads(runs: dict[str, _Run], clock: str) -> dict[str, float]:
    medians = {
        name: statistics.median(run.clocks[clock].values()) for name, run in runs.items() if run.clocks[clock]
    }
    out: dict[str, float] = {}
    for name, run in runs.items():
        base = run.variant.base
        if name in medians and base is not None and base in medians:
            out[name] = medians[name] - medians[base]
    return out


def _clock_summary(runs: dict[str, _Run], run: _Run, clock: str) -> dict[str, Any]:
    samples = run.clocks[clock]
    row: dict[str, Any] = _stats(list(samples.values()))
    base = runs.get(run.variant.base) if run.variant.base else None
    if base is not None and base.clocks[clock]:
        base_samples = base.clocks[clock]
        base_median = statistics.median(base_samples.values())
        paired = [value - base_samples[r] for r, value in samples.items() if r in base_samples]
        row["overhead_ns"] = row["median_ns"] - base_median
        row["overhead_iqr_ns"] = _stats(paired)["iqr_ns"] if paired else None
        row["ratio_to_base"] = row["median_ns"] / base_median
    return row


def _summaries(runs: dict[str, _Run], clock: str) -> list[dict[str, Any]]:
    other = "cpu" if clock == "wall" else "wall"
    out: list[dict[str, Any]] = []
    for name, run in runs.items():
        variant = run.variant
        measured = bool(run.clocks[clock])
        row: dict[str, Any] = {
            "name": name,
            "group": variant.group,
            "base": variant.base,
            "description": variant.description,
            "tokens": variant.tokens,
            "status": run.status if measured or run.status != "ok" else "error",
            "note": run.note or ("" if measured else "no samples"),
            "n": len(run.clocks[clock]),
        }
        if measured:
            row.update(_clock_summary(runs, run, clock))
            row[other] = _clock_summary(runs, run, other)
        if measured and run.counter is not None and run.queried_requests:
            row["store_queries"] = run.queries
            row["store_queries_per_request"] = run.queries / run.queried_requests
        out.append(row)
    return out


def _queries(runs: dict[str, _Run]) -> dict[str, tuple[int, int]]:
    """(store queries, requests) of the kept rounds, for the variants that count queries."""
    return {
        name: (run.queries, run.queried_requests)
        for name, run in runs.items()
        if run.counter is not None and run.queried_requests and run.clocks["wall"]
    }


def _targets(runs: dict[str, _Run], targets: Sequence[Target], clock: str) -> list[dict[str, Any]]:
    ratios = [target for target in targets if target.kind != "store_queries"]
    rows = evaluate_targets(_overheads(runs, clock), ratios)
    other = "cpu" if clock == "wall" else "wall"
    for row, alt in zip(rows, evaluate_targets(_overheads(runs, other), ratios), strict=True):
        row[f"measured_{other}"] = alt["measured"]
    queries = _queries(runs)
    return [*rows, *(_query_target(t, queries) for t in targets if t.kind == "store_queries")]


def _query_target(target: Target, queries: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """A ``store_queries`` target: queries per request of the numerator in its kept rounds (any clock)."""
    row: dict[str, Any] = {
        "name": target.name,
        "description": target.description,
        "kind": target.kind,
        "numerator": target.numerator,
        "denominators": [],
        "limit": target.limit,
        "measured": None,
        "passed": None,
        "note": f"not measured: {target.numerator}",
    }
    if target.numerator in queries:
        count, requests = queries[target.numerator]
        row["measured"] = count / requests
        row["note"] = f"{count} store queries in {requests} requests (warm-up rounds excluded)"
        if target.limit is not None:
            row["passed"] = row["measured"] <= target.limit
    return row


def evaluate_targets(
    overheads: dict[str, float], targets: Sequence[Target] = TARGETS
) -> list[dict[str, Any]]:
    """Each overhead target's measured ratio and verdict (``passed`` is ``None`` when not measurable)."""
    out: list[dict[str, Any]] = []
    for target in targets:
        row: dict[str, Any] = {
            "name": target.name,
            "description": target.description,
            "kind": target.kind,
            "numerator": target.numerator,
            "denominators": list(target.denominators),
            "limit": target.limit,
            "measured": None,
            "passed": None,
            "note": "",
        }
        missing = [n for n in (target.numerator, *target.denominators) if n not in overheads]
        if missing:
            row["note"] = f"not measured: {', '.join(missing)}"
        elif target.kind == "absolute":  # a bound in microseconds per request (or per copy), not a ratio
            row["measured"] = overheads[target.numerator] / target.copies / 1000
            row["numerator_ns"] = overheads[target.numerator] / target.copies
            row["unit"] = "µs absolute"
            if target.copies != 1:
                row["note"] = f"µs per copy ({target.copies} per request)"
            if target.limit is not None:
                row["passed"] = row["measured"] <= target.limit
        else:
            denominator = sum(overheads[n] for n in target.denominators)
            if denominator <= 0:
                row["note"] = "the reference overhead is not positive (noise); no ratio"
            else:
                row["measured"] = overheads[target.numerator] / denominator
                row["numerator_ns"] = overheads[target.numerator]
                row["denominator_ns"] = denominator
                if target.limit is not None:
                    row["passed"] = row["measured"] <= target.limit
        out.append(row)
    return out


__all__ = [
    "QUICK",
    "BenchConfig",
    "environment",
    "evaluate_targets",
    "run_inprocess",
    "select_variants",
]
