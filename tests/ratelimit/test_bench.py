"""The rate-limit benchmark variants run, and the Redis one proves one round trip per request."""

from __future__ import annotations

import pytest

from asgi_kit.testing import call_app
from benchmarks.suite._apps import bare_asgi_app
from benchmarks.suite.driver import BenchConfig, run_inprocess
from benchmarks.suite.ratelimit import _RoundTrips
from benchmarks.suite.variants import TARGETS, get_variants
from tests.ratelimit.redis_harness import require_redis

TINY = BenchConfig(rounds=2, warmup=1, batch=5)


@pytest.mark.integration
def test_variants_measure_with_one_round_trip() -> None:
    """kit.ratelimit.memory and kit.ratelimit.redis are measured (every request admitted, one EVALSHA each)."""
    require_redis()
    names = ["bare.asgi", "kit.request_id", "kit.ratelimit.memory", "kit.ratelimit.redis"]
    result = run_inprocess(TINY, variants=get_variants(names), targets=TARGETS)
    rows = {row["name"]: row for row in result["variants"]}
    for name in names:
        assert rows[name]["status"] == "ok", rows[name]["note"]
    targets = {row["name"]: row for row in result["targets"]}
    assert targets["ratelimit_memory"]["limit"] == 1.5
    assert targets["ratelimit_redis"]["limit"] is None


def test_round_trip_guard_fails_other_counts() -> None:
    """A request whose layer sent no command, or two, answers 500 (the variant then fails)."""
    sent = [0]
    guard = _RoundTrips(sent)

    async def two_round_trips(scope, receive, send):  # type: ignore[no-untyped-def]
        sent[0] += 2
        await guard.inner(bare_asgi_app)(scope, receive, send)

    async def one_round_trip(scope, receive, send):  # type: ignore[no-untyped-def]
        sent[0] += 1
        await guard.inner(bare_asgi_app)(scope, receive, send)

    import asyncio

    assert asyncio.run(call_app(guard.outer(two_round_trips), path="/items/42")).status == 500
    assert asyncio.run(call_app(guard.outer(one_round_trip), path="/items/42")).status == 200


def test_redis_variant_skips_when_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable Redis skips the variant with a note naming the environment variable."""
    monkeypatch.setenv("ASGI_KIT_BENCH_REDIS_URL", "redis://127.0.0.1:1/0")
    result = run_inprocess(TINY, variants=get_variants(["bare.asgi", "kit.ratelimit.redis"]), targets=())
    row = next(r for r in result["variants"] if r["name"] == "kit.ratelimit.redis")
    assert row["status"] == "skipped" and "ASGI_KIT_BENCH_REDIS_URL" in row["note"]
