"""Store queries per request: counted by the suite for the API-key variants, 0 in steady state."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_kit._asgi.types import ASGIApp
from asgi_kit.bench.report import make_console
from benchmarks.suite._apps import bare_asgi_app
from benchmarks.suite.driver import BenchConfig, run_inprocess
from benchmarks.suite.report import render
from benchmarks.suite.variants import BenchContext, Target, Variant

TINY = BenchConfig(rounds=2, warmup=1, batch=5)
ONLY = ("kit.auth.apikey*",)


def _rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result["variants"]}


def _targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result["targets"]}


def test_the_in_memory_api_key_variant_reports_zero_queries_in_steady_state() -> None:
    """The memory variant counts its store lookups: after the warm-up round there are none."""
    result = run_inprocess(TINY, only=ONLY)
    row = _rows(result)["kit.auth.apikey.memory"]
    assert row["store_queries"] == 0 and row["store_queries_per_request"] == 0.0
    assert "store_queries" not in _rows(result)["bare.asgi"]
    target = _targets(result)["apikey_postgres_queries"]
    assert target["passed"] is None and target["note"] == "not measured: kit.auth.apikey.postgres"


@pytest.mark.postgres
def test_the_postgres_api_key_variant_makes_no_query_per_request(database_url: str) -> None:
    """kit.auth.apikey.postgres: 0 store queries per request, and both API-key targets are evaluated."""
    result = run_inprocess(TINY, only=ONLY, database_url=database_url)
    row = _rows(result)["kit.auth.apikey.postgres"]
    assert row["status"] == "ok"
    assert row["store_queries"] == 0 and row["store_queries_per_request"] == 0.0
    targets = _targets(result)
    queries = targets["apikey_postgres_queries"]
    assert queries["measured"] == 0.0 and queries["passed"] is True
    assert queries["note"] == "0 store queries in 20 requests (warm-up rounds excluded)"
    assert "measured_cpu" not in queries  # a count: the same on either clock
    assert targets["apikey_postgres"]["numerator"] == "kit.auth.apikey.postgres"
    console = make_console()
    with console.capture() as captured:
        render(result, console)
    assert "queries/req" in captured.get() and "0 store queries in 20 requests" in captured.get()


def test_a_variant_making_a_query_per_request_fails_the_query_target() -> None:
    """A counter that grows with every request is reported as 1.0 queries per request, failing a 0 limit."""
    calls = {"n": 0}

    def build(ctx: BenchContext) -> ASGIApp:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            calls["n"] += 1
            await bare_asgi_app(scope, receive, send)

        ctx.count_store_queries(app, lambda: calls["n"])
        return app

    variants = [
        Variant("bare.asgi", "base", None, "base", lambda ctx: bare_asgi_app),
        Variant("kit.querying", "kit", "bare.asgi", "a query per request", build),
    ]
    target = Target("q", "queries", "kit.querying", (), 0.0, kind="store_queries")
    config = BenchConfig(rounds=2, warmup=1, batch=4)
    result = run_inprocess(config, variants=variants, targets=[target])
    assert _rows(result)["kit.querying"]["store_queries_per_request"] == 1.0
    row = _targets(result)["q"]
    assert row["measured"] == 1.0 and row["passed"] is False
    console = make_console()
    with console.capture() as captured:
        render(result, console)
    assert "1.000" in captured.get()
