"""The peer comparison, in process: build the variants, time them with the kit's driver, judge the targets.

The timing itself is :mod:`asgi_kit.bench.driver` (its docstring has the method). What this
module adds is the suite's side of it:

1. Every selected variant is built once. A variant whose layer or peer cannot be imported
   (or whose PostgreSQL cannot be reached) is skipped with a note. Async builders are awaited
   on the event loop the requests then run on (a database pool belongs to the loop that
   opened it); what they opened is closed on that loop at the end (``BenchContext.aclose``).
2. Every request is ``GET /items/42?verbose=1`` with an ``Authorization`` value and four
   usual headers. "Cold" variants get a distinct pre-minted token per request, "cached" ones
   reuse one token, "api_key" ones send the run's one API key as the bearer credential; the
   same sequence is used by every variant of a mode. Every answer must be 200 with the
   suite's body.
3. Each target of issue 7 is a ratio of overheads measured in the same run.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any, Final

from asgi_kit._asgi.principal import Credentials, Principal
from asgi_kit._asgi.types import ASGIApp, Scope
from asgi_kit.bench.driver import (
    QUICK,
    BenchConfig,
    Case,
    Progress,
    Timing,
    close_loop,
    environment,
    overheads,
    summarize,
    time_cases,
)
from benchmarks.suite import RESULT_SCHEMA
from benchmarks.suite._apps import BODY, ROLE, SkipVariant, api_key_values, bearer_values, request_scope
from benchmarks.suite.variants import TARGETS, VARIANTS, BenchContext, Target, TokenMode, Variant

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

PRINCIPAL: Final = Principal(user_id="user-0", org_id="org-0", role=ROLE, auth_method="jwt")
#: What the ``principal=True`` variants find in the scope: RBAC and budgets measured without auth.
PRINCIPAL_SCOPE: Final = {"user": PRINCIPAL, "auth": Credentials(scopes=(), method="jwt")}


def check_body(body: bytes) -> str | None:
    """The suite's answer is ``{"item_id":42}`` (the frameworks differ in spacing only)."""
    return None if body.replace(b" ", b"") == BODY else f"answered {body[:200]!r}"


def scopes(pool: Sequence[bytes], principal: bool) -> Callable[[int], Scope]:
    """The scope of request ``index``: the pool's ``index``-th credential (and the principal, pre-set)."""
    extras = PRINCIPAL_SCOPE if principal else None
    return lambda index: request_scope(pool[index], extras)


def credentials(mode: TokenMode, count: int, ctx: BenchContext) -> list[bytes]:
    """``count`` Authorization values for a token mode (the same sequence for every variant of it)."""
    if mode == "api_key":
        return api_key_values(count, ctx.api_key())
    return bearer_values(count, cold=mode == "cold")


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


class _Built:
    """A variant once built: its app and its store-query counter, or why it is not measured."""

    def __init__(self, variant: Variant) -> None:
        self.variant = variant
        self.app: ASGIApp | None = None
        self.counter: Callable[[], int] | None = None
        self.status = "ok"
        self.note = ""


def _build(variants: Sequence[Variant], ctx: BenchContext, loop: asyncio.AbstractEventLoop) -> list[_Built]:
    built: dict[str, _Built] = {}
    for variant in variants:
        entry = built[variant.name] = _Built(variant)
        base = built.get(variant.base) if variant.base else None
        if base is not None and base.app is None:
            entry.status, entry.note = "skipped", f"its base {base.variant.name} is unavailable"
            continue
        try:
            app = variant.build(ctx)
            entry.app = loop.run_until_complete(app) if isinstance(app, Awaitable) else app
            entry.counter = ctx.store_query_counter(entry.app)
        except SkipVariant as exc:
            entry.status, entry.note = "skipped", str(exc)
        except Exception as exc:  # a layer changed shape: report it, measure the others
            entry.status, entry.note = "error", f"build failed: {type(exc).__name__}: {exc}"
    return list(built.values())


def run_inprocess(
    config: BenchConfig = BenchConfig(),
    *,
    only: Sequence[str] = (),
    variants: Sequence[Variant] | None = None,
    targets: Sequence[Target] = TARGETS,
    progress: Progress | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Measure the variants and return the result document (see ``docs/benchmarks.md``).

    ``only`` holds ``fnmatch`` patterns on variant names; ``database_url`` is the PostgreSQL
    of the ``*.postgres`` variants (``None`` skips them).
    """
    selected = select_variants(only, VARIANTS if variants is None else variants)
    started = time.perf_counter()
    env = environment(PACKAGES)
    ctx = BenchContext(database_url=database_url)
    loop = asyncio.new_event_loop()
    try:
        built = _build(selected, ctx, loop)
        ready = [entry for entry in built if entry.app is not None]
        modes = {entry.variant.tokens for entry in ready}
        pools = {mode: credentials(mode, config.requests, ctx) for mode in modes}
        cases = [
            Case(
                entry.variant.name,
                entry.app,
                scopes(pools[entry.variant.tokens], entry.variant.principal),
                base=entry.variant.base,
                check=check_body,
                counter=entry.counter,
            )
            for entry in ready
            if entry.app is not None
        ]
        timings = {t.case.name: t for t in time_cases(cases, config, loop, progress)}
    finally:
        try:
            loop.run_until_complete(ctx.aclose())
        finally:
            close_loop(loop)
    env["loadavg_after"] = environment(())["loadavg"]
    env["database"] = ctx.database_info
    return {
        "schema": RESULT_SCHEMA,
        "mode": "in-process",
        "config": {**asdict(config), "only": list(only)},
        "environment": env,
        "duration_s": round(time.perf_counter() - started, 3),
        "variants": _rows(built, timings, config.clock),
        "targets": _targets(list(timings.values()), targets, config.clock),
        "e2e": None,
    }


def _rows(built: Sequence[_Built], timings: dict[str, Timing], clock: str) -> list[dict[str, Any]]:
    measured = {row["name"]: row for row in summarize(list(timings.values()), clock)}
    out: list[dict[str, Any]] = []
    for entry in built:
        variant = entry.variant
        row: dict[str, Any] = {
            "name": variant.name,
            "group": variant.group,
            "base": variant.base,
            "description": variant.description,
            "tokens": variant.tokens,
            "status": entry.status,
            "note": entry.note,
            "n": 0,
        }
        row.update({k: v for k, v in measured.get(variant.name, {}).items() if k not in ("name", "base")})
        timing = timings.get(variant.name)
        if timing is not None and timing.case.counter is not None and timing.counted_requests and row["n"]:
            row["store_queries"] = timing.counted
            row["store_queries_per_request"] = timing.counted / timing.counted_requests
        out.append(row)
    return out


def _queries(timings: Sequence[Timing]) -> dict[str, tuple[int, int]]:
    """(store queries, requests) of the kept rounds, for the variants that count queries."""
    return {
        t.case.name: (t.counted, t.counted_requests)
        for t in timings
        if t.case.counter is not None and t.counted_requests and t.clocks["wall"]
    }


def _targets(timings: list[Timing], targets: Sequence[Target], clock: str) -> list[dict[str, Any]]:
    ratios = [target for target in targets if target.kind != "store_queries"]
    rows = evaluate_targets(overheads(timings, clock), ratios)
    other = "cpu" if clock == "wall" else "wall"
    for row, alt in zip(rows, evaluate_targets(overheads(timings, other), ratios), strict=True):
        row[f"measured_{other}"] = alt["measured"]
    queries = _queries(timings)
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
    "PACKAGES",
    "PRINCIPAL_SCOPE",
    "QUICK",
    "BenchConfig",
    "check_body",
    "credentials",
    "environment",
    "evaluate_targets",
    "run_inprocess",
    "scopes",
    "select_variants",
]
