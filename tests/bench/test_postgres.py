"""The PostgreSQL variants (issue 5): measured against a real server, skipped with a note without one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from benchmarks.suite import apps, context, database
from benchmarks.suite._apps import bare_asgi_app
from benchmarks.suite.driver import BenchConfig, run_inprocess
from benchmarks.suite.variants import BenchContext, Variant
from tests.harness.postgres import server_url, with_database

ONLY = ("kit.budget*", "kit.auth.apikey*")
POSTGRES_VARIANTS = {"kit.budget.postgres.cached", "kit.budget.postgres.uncached", "kit.auth.apikey.postgres"}
TINY = BenchConfig(rounds=2, warmup=1, batch=3, clock="cpu")


def _rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result["variants"]}


@pytest.mark.postgres
def test_postgres_variants_are_measured_and_a_second_run_reuses_the_database(database_url: str) -> None:
    """Budget (cached, uncached) and API-key variants answer 200 on PostgreSQL, run after run."""
    import psycopg

    for _ in range(2):  # the second run finds org-0 already there
        result = run_inprocess(TINY, only=ONLY, database_url=database_url)
        rows = _rows(result)
        assert {name: row["status"] for name, row in rows.items()} == dict.fromkeys(rows, "ok")
        assert POSTGRES_VARIANTS | {"kit.budget", "kit.auth.apikey.memory"} <= set(rows)
        assert all(rows[name]["n"] == 2 and rows[name]["overhead_ns"] for name in POSTGRES_VARIANTS)
        assert rows["kit.auth.apikey.postgres"]["tokens"] == "api_key"
        assert result["environment"]["database"]["url"] == database_url
        assert result["environment"]["database"]["server_version"]
    with psycopg.connect(database_url) as conn:
        budget = conn.execute("SELECT budget_tokens_monthly FROM organizations WHERE id = 'org-0'").fetchone()
        touched = conn.execute("SELECT count(last_used_at) FROM api_keys WHERE org_id = 'org-0'").fetchone()
    assert budget == (database.ORG_BUDGET,)
    # One key per run, each touched in the background and drained before the pool closed.
    assert touched == (2,)


@pytest.mark.postgres
async def test_context_opens_the_database_once_and_closes_it(database_url: str) -> None:
    """Every variant of a run shares one pool, opened on the running loop and closed by aclose."""
    ctx = BenchContext(database_url=database_url)
    first = await ctx.database()
    assert await ctx.database() is first
    assert ctx.database_info == {"url": database_url, "server_version": first.server_version}
    assert await first.usage.get_budget("org-0") is not None
    key_id = ctx.api_key().split("_")[2]
    assert (await first.api_keys.get_api_key(key_id)) is not None
    await ctx.aclose()
    assert first.pool.closed


@pytest.mark.postgres
async def test_the_scratch_database_is_created_when_missing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL naming the scratch database creates it on first use and reuses it afterwards."""
    import psycopg

    name = f"asgi_kit_bench_test_{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(database, "SCRATCH_DATABASE", name)
    url = with_database(server_url(), name)
    try:
        for _ in range(2):
            opened = await database.open_bench_database(url, BenchContext().api_key())
            await opened.pool.close()
    finally:
        with psycopg.connect(server_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_without_a_database_the_postgres_variants_skip_with_a_note() -> None:
    """No URL: the PostgreSQL variants skip and say how to give one; the others still run."""
    rows = _rows(run_inprocess(TINY, only=ONLY))
    for name in POSTGRES_VARIANTS:
        assert rows[name]["status"] == "skipped"
        assert "--database-url" in rows[name]["note"] and database.DATABASE_URL_ENV in rows[name]["note"]
    assert rows["kit.budget"]["status"] == rows["kit.auth.apikey.memory"]["status"] == "ok"


def test_an_unreachable_server_is_tried_once_and_its_password_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unreachable server skips every PostgreSQL variant after one attempt, with a redacted URL."""
    attempts: list[str | None] = []

    async def counting(url: str | None, api_key: str) -> database.BenchDatabase:
        attempts.append(url)
        return await database.open_bench_database(url, api_key)

    monkeypatch.setattr(context, "open_bench_database", counting)
    result = run_inprocess(
        TINY, only=ONLY, database_url="postgresql://bench:hunter2@127.0.0.1:1/asgi_kit_bench"
    )
    rows = _rows(result)
    for name in POSTGRES_VARIANTS:
        note = rows[name]["note"]
        assert rows[name]["status"] == "skipped"
        assert "not reachable at postgresql://bench:REDACTED@127.0.0.1:1/asgi_kit_bench" in note
        assert "hunter2" not in note
    assert len(attempts) == 1
    assert result["environment"]["database"] is None


def test_async_builders_and_clean_ups_run_on_the_loop_the_requests_use() -> None:
    """An async builder is awaited, and its clean-up run, on the very loop that serves the requests."""
    loops: dict[str, asyncio.AbstractEventLoop] = {}

    async def build(ctx: BenchContext) -> ASGIApp:
        loops["build"] = asyncio.get_running_loop()

        async def cleanup() -> None:
            loops["cleanup"] = asyncio.get_running_loop()

        ctx.push_async_callback(cleanup)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            loops["request"] = asyncio.get_running_loop()
            await bare_asgi_app(scope, receive, send)

        return app

    variants = [
        Variant("t.base", "base", None, "base", lambda ctx: bare_asgi_app),
        Variant("t.async", "kit", "t.base", "async builder", build, "api_key"),
    ]
    result = run_inprocess(BenchConfig(rounds=1, warmup=0, batch=2), variants=variants, targets=())
    assert _rows(result)["t.async"]["status"] == "ok"
    assert loops["build"] is loops["request"] is loops["cleanup"]
    assert loops["build"].is_closed()


def test_e2e_apps_refuse_a_variant_that_needs_a_loop_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """The uvicorn factory builds without an event loop, so an async builder is a clear error."""
    monkeypatch.setattr(apps, "E2E_APPS", {"bare": "kit.auth.apikey.postgres"})
    monkeypatch.setenv(apps.APP_ENV, "bare")
    with pytest.raises(TypeError, match="needs an event loop"):
        apps.create_app()
