"""End-to-end mode, pure parts: wrk parsing with the Lua percentiles, latency points, targets, rows."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from asgi_kit.bench.e2e import (
    GC_MODES,
    POINTS,
    WRK_SCRIPT,
    E2EConfig,
    latency_points,
    parse_wrk,
    read_diagnostics,
    serve,
)
from asgi_kit.bench.report import e2e_cells, render_e2e
from asgi_kit.bench.request import BenchRequest
from asgi_kit.bench.serving import PAUSE_BUCKETS_MS, Diagnostics, GcPauses, thread_cpu_seconds
from asgi_kit.testing.asgi import run_lifespan
from benchmarks.suite.e2e import SUITE_E2E, e2e_targets, served

WRK_HEAD = """Running 8s test @ http://127.0.0.1:8000/items/42?verbose=1
  1 threads and 32 connections
  Latency Distribution
     50%   10.00ms
     75%   12.00ms
     90%   14.00ms
     99%   20.00ms
  12000 requests in 8.00s, 1.00MB read
Requests/sec:   1500.00
"""


def test_the_lua_lines_win_over_the_rounded_table() -> None:
    """p50/p99 come from the Lua hook's microseconds when present, p99.9 and max only from there."""
    lua = "asgi-kit-latency 50 10123\nasgi-kit-latency 99 20456\nasgi-kit-latency 99.9 31000\n"
    result = parse_wrk(WRK_HEAD + lua + "asgi-kit-latency max 45000\nasgi-kit-latency 42 1\n")
    assert result.p50_ms == pytest.approx(10.123) and result.p99_ms == pytest.approx(20.456)
    assert result.p999_ms == pytest.approx(31.0) and result.distribution["max"] == pytest.approx(45.0)
    assert "42" not in result.distribution  # a point the suite does not report is ignored
    assert result.rps == pytest.approx(1500.0)


def test_without_the_lua_lines_p999_is_unknown() -> None:
    """Plain wrk --latency output still parses; p99.9 is None rather than guessed."""
    result = parse_wrk(WRK_HEAD)
    assert result.p50_ms == pytest.approx(10.0) and result.p99_ms == pytest.approx(20.0)
    assert result.p999_ms is None


def test_the_lua_script_prints_every_point() -> None:
    """The shipped done() hook prints each percentile of POINTS and the max, in microseconds."""
    for point in POINTS[:-1]:
        assert point in WRK_SCRIPT.replace("{50, 90, 99, 99.9, 99.99}", "50 90 99 99.9 99.99")
    assert "latency.max" in WRK_SCRIPT and "latency:percentile(p)" in WRK_SCRIPT


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@given(
    requests=st.integers(min_value=0, max_value=10**9),
    seconds=st.decimals(min_value="0.01", max_value="9999.99", places=2),
    table=st.dictionaries(
        st.sampled_from(["50", "75", "90", "99"]),
        st.tuples(
            st.decimals(min_value="0.00", max_value="999.99", places=2), st.sampled_from(list(_UNIT_MS))
        ),
    ),
    lua=st.dictionaries(st.sampled_from(list(POINTS)), st.integers(min_value=0, max_value=10**9)),
    errors=st.lists(st.integers(min_value=0, max_value=10**6), min_size=5, max_size=5),
)
def test_parse_wrk_round_trips_what_wrk_prints(
    requests: int,
    seconds: Any,
    table: dict[str, tuple[Any, str]],
    lua: dict[str, int],
    errors: list[int],
) -> None:
    """Any wrk-shaped output parses back to its counts, table percentiles, Lua points and errors."""
    lines = ["Running 1s test @ http://127.0.0.1:1/", "  Latency Distribution"]
    lines += [f"  {point:>4}%  {value}{unit}" for point, (value, unit) in table.items()]
    lines.append(f"  {requests} requests in {seconds}s, 1.00KB read")
    lines.append(
        f"  Socket errors: connect {errors[0]}, read {errors[1]}, write {errors[2]}, timeout {errors[3]}"
    )
    lines.append(f"  Non-2xx or 3xx responses: {errors[4]}")
    lines += [f"asgi-kit-latency {point} {micros}" for point, micros in lua.items()]
    result = parse_wrk("\n".join(lines) + "\n")
    assert result.requests == requests and result.errors == sum(errors)
    assert result.seconds == pytest.approx(float(seconds))
    expected = {
        point: float(value) * _UNIT_MS[unit] for point, (value, unit) in table.items() if point in POINTS
    }
    expected.update({point: micros / 1000 for point, micros in lua.items()})
    assert result.distribution == pytest.approx(expected)
    assert result.p999_ms == expected.get("99.9")


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=3000))
def test_latency_points_are_ordered_members_of_the_sample(values: list[float]) -> None:
    """Each point is one of the measured latencies, and the points never decrease."""
    values.sort()
    points = latency_points(values)
    assert list(points) == list(POINTS) and points["max"] == values[-1]
    ladder = [points[p] for p in POINTS]
    assert ladder == sorted(ladder) and all(v in values for v in ladder)


def test_latency_points_of_a_thousand_requests() -> None:
    """Nearest rank: of 1..1000 ms, p50 is 500, p99 990, p99.9 999, max 1000; nothing for no request."""
    points = latency_points([float(v) for v in range(1, 1001)])
    assert (points["50"], points["99"], points["99.9"], points["max"]) == (500.0, 990.0, 999.0, 1000.0)
    assert latency_points([]) == {}


def _row(app: str, gc: str, rps: float, p99: float, p999: float, workers: int = 1) -> dict[str, Any]:
    return {
        "app": app,
        "workers": workers,
        "gc": gc,
        "rps": rps,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "p999_ms": p999,
        "peak_rss_bytes": 100,
    }


def test_targets_use_the_default_gc_rows() -> None:
    """With both modes measured, rps, p99 and p99.9 ratios come from the default-GC rows."""
    rows = [
        _row("bare", "default", 1000.0, 10.0, 12.0),
        _row("kit", "default", 400.0, 25.0, 40.0),
        _row("bare", "freeze", 1000.0, 10.0, 12.0),
        _row("kit", "freeze", 600.0, 15.0, 20.0),
    ]
    targets = {t["name"]: t for t in e2e_targets(rows)}
    assert targets["e2e_rps_kit_w1"]["measured"] == pytest.approx(0.4)
    assert targets["e2e_rps_kit_w1"]["passed"] is False
    assert targets["e2e_p99_kit_w1"]["measured"] == pytest.approx(2.5)
    assert targets["e2e_p99_kit_w1"]["passed"] is False
    assert targets["e2e_p999_kit_w1"]["measured"] == pytest.approx(40 / 12)
    assert targets["e2e_p999_kit_w1"]["limit"] == 3.0 and targets["e2e_p999_kit_w1"]["passed"] is False
    assert "frozen" not in targets["e2e_p99_kit_w1"]["description"]


def test_targets_of_a_freeze_only_run_say_so() -> None:
    """A run of the freeze mode alone is judged on its rows, and each description says every heap was frozen."""
    rows = [_row("bare", "freeze", 1000.0, 10.0, 12.0), _row("kit", "freeze", 600.0, 15.0, 30.0)]
    targets = {t["name"]: t for t in e2e_targets(rows)}
    assert targets["e2e_p999_kit_w1"]["passed"] is True
    assert all("every heap frozen" in t["description"] for t in targets.values())


def test_p999_target_is_information_only_with_two_workers() -> None:
    """As for the other e2e targets, only one worker has limits."""
    rows = [_row("bare", "default", 1000.0, 10.0, 12.0, 2), _row("kit", "default", 900.0, 11.0, 13.0, 2)]
    target = {t["name"]: t for t in e2e_targets(rows)}["e2e_p999_kit_w2"]
    assert (
        target["limit"] is None and target["passed"] is None and target["measured"] == pytest.approx(13 / 12)
    )


def test_report_rows_show_the_gc_mode_and_p999() -> None:
    """The e2e table has a gc column and p99.9; missing figures are dashes; old rows read as default."""
    row = _row("kit", "freeze", 1234.4, 20.0, 31.256)
    assert e2e_cells(row) == ("kit", "1", "freeze", "1234", "10.00", "20.00", "31.26", "0.0", "0")
    bare = {"app": "bare", "workers": 1, "rps": None, "p99_ms": None, "peak_rss_bytes": 0}
    assert e2e_cells(bare) == ("bare", "1", "default", "-", "-", "-", "-", "-", "0")
    console = Console(record=True, width=200)
    render_e2e({"loader": "wrk", "runs": [row, bare]}, console)
    text = console.export_text()
    assert "p99.9 ms" in text and "gc" in text and "31.26" in text


@pytest.mark.parametrize("modes", [(), ("other",), ("default", "nope")])
def test_gc_modes_are_validated(modes: tuple[str, ...]) -> None:
    """gc_modes must name at least one of default and freeze."""
    with pytest.raises(ValueError, match="gc_modes"):
        E2EConfig(gc_modes=modes)


def test_both_modes_by_default() -> None:
    """The suite's e2e run measures the default GC first, then the frozen heap; a plain run the default only."""
    assert SUITE_E2E.gc_modes == GC_MODES == ("default", "freeze")
    assert E2EConfig().gc_modes == ("default",)


def test_serve_refuses_an_unknown_gc_mode() -> None:
    """serve() names the option before starting anything."""
    with pytest.raises(ValueError, match="gc_mode"), serve(served("bare"), 1, BenchRequest(), gc_mode="off"):
        pass


def test_gc_pauses_count_only_while_recording() -> None:
    """Collections before recording starts are ignored; afterwards each is counted per generation."""
    pauses = GcPauses()
    pauses.install()
    try:
        gc.collect(0)
        assert pauses.stats[0]["count"] == 0
        pauses.recording = True
        gc.collect(0)
        gc.collect(2)
    finally:
        pauses.remove()
    pauses.remove()  # removing twice is harmless
    zero, full = pauses.stats[0], pauses.stats[2]
    assert zero["count"] >= 1 and full["count"] == 1
    assert full["max_ms"] > 0 and full["total_ms"] >= full["max_ms"]
    assert sum(full["hist"]) == 1 and len(full["hist"]) == len(PAUSE_BUCKETS_MS) + 1


def test_thread_cpu_seconds_names_live_threads() -> None:
    """The main thread and a started thread are reported with their CPU seconds."""
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="bench-test-worker")
    worker.start()
    try:
        times = thread_cpu_seconds()
    finally:
        stop.set()
        worker.join()
    assert times["MainThread"] > 0 and "bench-test-worker" in times


def test_diagnostics_write_at_lifespan_shutdown(tmp_path: Path) -> None:
    """The wrapper records from the first request on and writes its JSON when the lifespan shuts down."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    path = tmp_path / "diagnostics.123"
    wrapped = Diagnostics(app, str(path))
    try:
        asyncio.run(wrapped({"type": "http"}, None, None))
        gc.collect(2)
        sent = asyncio.run(run_lifespan(wrapped))
    finally:
        wrapped._pauses.remove()
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    document = json.loads(path.read_text())
    assert document["gc"]["2"]["count"] >= 1 and "MainThread" in document["thread_cpu_s"]
    (tmp_path / "diagnostics.9.tmp").write_text("{")
    (tmp_path / "diagnostics.10").write_text("not json")
    assert read_diagnostics(tmp_path) == [document]
