"""The in-process driver: a tiny run of the whole registry, the JSON shape, and every failure path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_kit._asgi.types import Receive, Scope, Send
from benchmarks.suite import RESULT_SCHEMA
from benchmarks.suite._apps import BODY, bare_asgi_app, bearer_values, load, mint_token, request_scope
from benchmarks.suite.driver import (
    PACKAGES,
    BenchConfig,
    environment,
    evaluate_targets,
    run_inprocess,
    select_variants,
)
from benchmarks.suite.variants import (
    TARGETS,
    VARIANTS,
    BenchContext,
    SkipVariant,
    Target,
    Variant,
    get_variants,
)

TINY = BenchConfig(rounds=2, warmup=1, batch=3)


@pytest.fixture(scope="module")
def tiny_result() -> dict[str, Any]:
    """One tiny run over every registered variant, shared by the shape checks."""
    return run_inprocess(TINY)


def test_tiny_run_has_the_documented_shape(tiny_result: dict[str, Any]) -> None:
    """The result document carries schema, config, environment, variants and targets, and is JSON."""
    assert tiny_result["schema"] == RESULT_SCHEMA
    assert tiny_result["mode"] == "in-process"
    assert tiny_result["config"]["rounds"] == 2
    assert tiny_result["e2e"] is None
    env = tiny_result["environment"]
    assert {"python", "platform", "cpu_count", "packages", "loadavg", "loadavg_after"} <= set(env)
    assert "fastapi" in env["packages"]
    assert json.loads(json.dumps(tiny_result)) == tiny_result
    assert [row["name"] for row in tiny_result["variants"]] == [v.name for v in VARIANTS]
    assert [row["name"] for row in tiny_result["targets"]] == [t.name for t in TARGETS]


def test_every_installed_variant_is_measured_not_errored(tiny_result: dict[str, Any]) -> None:
    """With the dev extras installed no variant errors; measured ones have stats and an overhead."""
    errored = {row["name"]: row["note"] for row in tiny_result["variants"] if row["status"] == "error"}
    assert errored == {}
    for row in tiny_result["variants"]:
        if row["status"] != "ok":
            assert row["status"] == "skipped" and row["note"]
            continue
        assert row["n"] == 2
        assert row["q1_ns"] <= row["median_ns"] <= row["q3_ns"]
        assert row["iqr_ns"] >= 0 and row["mad_ns"] >= 0
        if row["base"] is not None:
            assert "overhead_ns" in row and row["ratio_to_base"] > 0
            assert "overhead_ns" in row["cpu"]  # the other clock, measured on the same batches


def test_targets_are_evaluated_when_both_sides_ran(tiny_result: dict[str, Any]) -> None:
    """Each target has a verdict or a note saying why it has none."""
    for row in tiny_result["targets"]:
        assert row["measured"] is not None or row["note"]
        if row["measured"] is not None and row["limit"] is not None:
            assert row["passed"] is (row["measured"] <= row["limit"])


def test_only_selects_patterns_and_their_bases() -> None:
    """--only keeps the matching variants plus their bases (and the floor for excluded ones)."""
    chosen = [v.name for v in select_variants(["kit.metrics.excluded", "peer.pyjwt.*"])]
    assert chosen == [
        "bare.asgi",
        "bare.fastapi",
        "floor.passthrough",
        "floor.passthrough.x10",
        "kit.metrics.excluded",
        "peer.pyjwt.cold",
        "peer.pyjwt.cached",
    ]
    assert select_variants([]) == VARIANTS
    with pytest.raises(ValueError, match="matches no variant"):
        select_variants(["nothing.*"])


def test_get_variants_refuses_unknown_names() -> None:
    """Asking the registry for a name it does not hold is an error naming it."""
    assert get_variants(["bare.asgi"])[0].name == "bare.asgi"
    with pytest.raises(ValueError, match="nope"):
        get_variants(["nope"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rounds": 0}, "rounds"),
        ({"batch": True}, "batch"),
        ({"warmup": -1}, "warmup"),
        ({"gc_mode": "off"}, "gc_mode"),
        ({"clock": "sundial"}, "clock"),
    ],
)
def test_config_validates_its_options(options: dict[str, Any], message: str) -> None:
    """A bad option fails at construction, naming the option."""
    with pytest.raises(ValueError, match=message):
        BenchConfig(**options)


async def _unauthorized(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 401, "headers": []})
    await send({"type": "http.response.body", "body": b"no"})


def _flaky() -> Any:
    calls = {"n": 0}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await bare_asgi_app(scope, receive, send)

    return app


def _raising_later() -> Any:
    calls = {"n": 0}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("broke mid-run")
        await bare_asgi_app(scope, receive, send)

    return app


async def _raising(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("always")


def _missing_layer(ctx: BenchContext) -> Any:
    load("asgi_kit.not_landed_yet", "Middleware")


def _missing_name(ctx: BenchContext) -> Any:
    load("asgi_kit.errors", "NotThereYet")


def _bad_signature(ctx: BenchContext) -> Any:
    raise TypeError("unexpected keyword argument 'x'")


def test_failures_are_reported_per_variant_and_never_stop_the_run() -> None:
    """Missing layers are skipped, broken ones errored, and the others are still measured."""
    base = Variant("t.base", "base", None, "base", lambda ctx: bare_asgi_app)
    skipped_base = Variant("t.skipped_base", "base", None, "base", _missing_layer)
    variants = [
        base,
        skipped_base,
        Variant("t.ok", "kit", "t.base", "ok", lambda ctx: bare_asgi_app, principal=True),
        Variant("t.missing", "kit", "t.base", "missing module", _missing_layer),
        Variant("t.missing_name", "kit", "t.base", "missing name", _missing_name),
        Variant("t.orphan", "kit", "t.skipped_base", "base skipped", lambda ctx: bare_asgi_app),
        Variant("t.bad_build", "kit", "t.base", "bad build", _bad_signature),
        Variant("t.unauthorized", "kit", "t.base", "401", lambda ctx: _unauthorized),
        Variant("t.raising", "kit", "t.base", "raises", lambda ctx: _raising),
        Variant("t.flaky", "kit", "t.base", "500 later", lambda ctx: _flaky(), "cold"),
        Variant("t.raising_later", "kit", "t.base", "raises later", lambda ctx: _raising_later()),
    ]
    targets = [Target("t", "ok vs base", "t.ok", ("t.ok",), 1.5)]
    config = BenchConfig(rounds=2, warmup=0, batch=2, gc_mode="disable", clock="cpu")
    result = run_inprocess(config, variants=variants, targets=targets)
    rows = {row["name"]: row for row in result["variants"]}
    assert rows["t.ok"]["status"] == "ok" and rows["t.ok"]["n"] == 2
    assert rows["t.missing"]["status"] == "skipped" and "not_landed_yet" in rows["t.missing"]["note"]
    assert rows["t.missing_name"]["status"] == "skipped" and "NotThereYet" in rows["t.missing_name"]["note"]
    assert rows["t.orphan"]["status"] == "skipped" and "t.skipped_base" in rows["t.orphan"]["note"]
    assert rows["t.bad_build"]["status"] == "error" and "TypeError" in rows["t.bad_build"]["note"]
    assert rows["t.unauthorized"]["status"] == "error" and "401" in rows["t.unauthorized"]["note"]
    assert rows["t.raising"]["status"] == "error" and "always" in rows["t.raising"]["note"]
    assert rows["t.flaky"]["status"] == "error" and "did not answer 200" in rows["t.flaky"]["note"]
    assert rows["t.raising_later"]["status"] == "error" and "broke mid-run" in rows["t.raising_later"]["note"]
    assert result["targets"][0]["measured"] is None or result["targets"][0]["passed"] is not None
    assert "measured_wall" in result["targets"][0] and "wall" in rows["t.ok"]


def test_evaluate_targets_ratios_sums_and_missing_sides() -> None:
    """Overhead ratios divide by the summed denominators; missing or non-positive ones give no verdict."""
    targets = [
        Target("pair", "a <= 0.5 b", "a", ("b",), 0.5),
        Target("sum", "s <= 1.05 (a + b)", "s", ("a", "b"), 1.05),
        Target("info", "informational", "a", ("b",), None),
        Target("missing", "x vs b", "x", ("b",), 1.0),
        Target("noise", "a vs z", "a", ("z",), 1.0),
    ]
    rows = {r["name"]: r for r in evaluate_targets({"a": 10.0, "b": 40.0, "s": 60.0, "z": -1.0}, targets)}
    assert rows["pair"]["measured"] == 0.25 and rows["pair"]["passed"] is True
    assert rows["sum"]["measured"] == 1.2 and rows["sum"]["passed"] is False
    assert rows["info"]["passed"] is None and rows["info"]["measured"] == 0.25
    assert rows["missing"]["measured"] is None and "x" in rows["missing"]["note"]
    assert rows["noise"]["measured"] is None and "not positive" in rows["noise"]["note"]


def test_cold_tokens_are_distinct_and_cached_ones_reused() -> None:
    """Cold pools never repeat a token; cached pools repeat one; both carry a Bearer value."""
    cold = bearer_values(50, cold=True)
    cached = bearer_values(5, cold=False)
    assert len(set(cold)) == 50
    assert len(set(cached)) == 1
    assert all(value.startswith(b"Bearer ") and value.count(b".") == 2 for value in cold + cached)
    assert mint_token(1) != mint_token(1)


def test_peer_pyjwt_accepts_the_pool_tokens() -> None:
    """PyJWT, with the audience and issuer the peers use, accepts the tokens the pool mints."""
    import jwt

    from benchmarks.suite._apps import AUDIENCE, ISSUER, SECRET

    claims = jwt.decode(mint_token(3), SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["type"] == "access" and claims["sub"] == "user-3"


def test_request_scope_is_fresh_each_time() -> None:
    """Every request gets its own scope, headers list and state dict."""
    one, two = request_scope(b"Bearer x"), request_scope(b"Bearer x", {"user": "u"})
    assert one is not two and one["headers"] is not two["headers"] and one["state"] is not two["state"]
    assert (b"authorization", b"Bearer x") in one["headers"]
    assert two["user"] == "u" and "user" not in one
    assert BODY == b'{"item_id":42}'


def test_load_skips_with_a_note() -> None:
    """A missing module or attribute raises SkipVariant naming it."""
    with pytest.raises(SkipVariant, match=r"asgi_kit\.nowhere"):
        load("asgi_kit.nowhere", "X")
    assert load("asgi_kit.errors", "ProblemDetailsMiddleware")[0].__name__ == "ProblemDetailsMiddleware"


def test_environment_lists_versions() -> None:
    """The environment names the interpreter, the CPU count and the installed versions."""
    env = environment(PACKAGES)
    assert env["cpu_count"] >= 1 and env["packages"]["asgi-kit"]
    assert env["packages"]["starlette"]


async def test_bare_app_serves_lifespan() -> None:
    """The pure-ASGI base answers lifespan startup and shutdown, like a real app."""
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await bare_asgi_app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_exchange_second_receive_waits_for_the_response() -> None:
    """After the request, receive blocks until the response is complete, then reports a disconnect."""
    import asyncio

    from asgi_kit.bench.driver import Exchange as _Exchange

    exchange = _Exchange()
    assert (await exchange.receive())["type"] == "http.request"
    waiting = asyncio.ensure_future(exchange.receive())
    await asyncio.sleep(0)
    assert not waiting.done()
    await exchange.send({"type": "http.response.start", "status": 204, "headers": []})
    await exchange.send({"type": "http.response.body", "body": b"", "more_body": False})
    assert (await waiting)["type"] == "http.disconnect"
    assert exchange.status == 204
