"""End-to-end mode: a tiny bounded uvicorn run, the load generators, wrk parsing, process cleanup."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit.bench import serving
from asgi_kit.bench.e2e import (
    GC_MODES,
    E2EConfig,
    builtin_load,
    parse_wrk,
    peak_rss,
    process_tree,
    serve,
    stop_process,
)
from asgi_kit.bench.request import BenchRequest
from asgi_kit.bench.serving import FACTORY_ENV, FREEZE_ENV
from asgi_kit.testing.asgi import run_lifespan
from benchmarks.suite._apps import authorized_request, mint_token
from benchmarks.suite.apps import APP_ENV, create_app
from benchmarks.suite.e2e import SuiteE2E, e2e_targets, run_suite_e2e, served
from tests.harness.servers import serve as serve_in_thread

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8000/items/42?verbose=1
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    44.00ms   10.00ms  80.00ms   70.00%
    Req/Sec   350.00     50.00   400.00     80.00%
  Latency Distribution
     50%  850.00us
     75%   50.00ms
     90%   60.00ms
     99%    1.20s
  350 requests in 1.00s, 50.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    348.02
Transfer/sec:     50.00KB
"""

pytestmark = pytest.mark.integration


def test_parse_wrk_reads_rate_percentiles_and_errors() -> None:
    """wrk --latency output gives requests, seconds, p50/p99 in ms, and socket plus non-2xx errors."""
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 350 and result.seconds == pytest.approx(1.0)
    assert result.rps == pytest.approx(350.0)
    assert result.p50_ms == pytest.approx(0.85) and result.p99_ms == pytest.approx(1200.0)
    assert result.errors == 6
    with pytest.raises(ValueError, match="request count"):
        parse_wrk("garbage")


@pytest.mark.slow
def test_tiny_bounded_e2e_run_with_the_builtin_loader() -> None:
    """Two apps in both GC modes are served, loaded, measured (GC diagnostics too) and stopped within seconds."""
    config = E2EConfig(
        workers=(1,),
        duration=0.3,
        warmup=0.1,
        repeats=1,
        connections=2,
        loader="builtin",
        gc_modes=GC_MODES,
        diagnostics=True,
    )
    steps: list[str] = []
    run = SuiteE2E(apps=("bare", "kit"), config=config)
    result = run_suite_e2e(run, progress=lambda done, total, label: steps.append(label))
    assert result["loader"] == "builtin"
    assert steps == ["bare x1 gc=default", "kit x1 gc=default", "bare x1 gc=freeze", "kit x1 gc=freeze"]
    rows = {(row["app"], row["gc"]): row for row in result["runs"]}
    for row in rows.values():
        assert row["rps"] > 0 and row["errors"] == 0
        assert row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"]
        assert row["peak_rss_bytes"] > 10 * 2**20
        (document,) = row["diagnostics"]
        assert document["gc"]["0"]["count"] > 0 and document["thread_cpu_s"]["MainThread"] > 0
    # Only the kit freezes in the default mode (its lifespan layer); every app in the freeze mode.
    frozen = {key: row["diagnostics"][0]["frozen"] > 0 for key, row in rows.items()}
    assert frozen == {
        ("bare", "default"): False,
        ("kit", "default"): True,
        ("bare", "freeze"): True,
        ("kit", "freeze"): True,
    }
    names = {t["name"]: t for t in result["targets"]}
    assert names["e2e_rps_kit_w1"]["measured"] > 0 and names["e2e_p999_kit_w1"]["measured"] > 0
    assert names["e2e_memory_w1"]["measured"] is None  # no peer stack in this run


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_loads_a_server_from_its_own_process() -> None:
    """With wrk installed, 'auto' picks it and its numbers are parsed."""
    config = E2EConfig(workers=(1,), duration=1.0, warmup=0, repeats=1, connections=2)
    result = run_suite_e2e(SuiteE2E(apps=("bare",), config=config))
    assert result["loader"] == "wrk"
    assert result["runs"][0]["rps"] > 0


def test_builtin_load_against_an_in_thread_server() -> None:
    """The built-in generator keeps keep-alive connections busy and stops at its request cap."""
    os.environ.pop(APP_ENV, None)
    request = authorized_request(b"Bearer " + mint_token(0).encode())
    with serve_in_thread(create_app()) as server:
        result = builtin_load(server.port, request, 2.0, 2, 5)
    assert 5 <= result.requests <= 6 and result.errors == 0


def test_a_server_that_dies_at_start_is_reported() -> None:
    """A uvicorn that exits during start-up raises instead of hanging, and is cleaned up."""
    with (
        pytest.raises(RuntimeError, match=r"(?s)exited.*ASGI_KIT_BENCH_APP"),
        serve(served("nope"), 1, BenchRequest(), startup_timeout=30),
    ):
        pass


def test_create_app_selects_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASGI_KIT_BENCH_APP picks bare, kit or peer; anything else is refused by name."""
    for name in ("bare", "kit", "peer"):
        monkeypatch.setenv(APP_ENV, name)
        assert callable(create_app())
    monkeypatch.setenv(APP_ENV, "other")
    with pytest.raises(ValueError, match=APP_ENV):
        create_app()


def test_create_app_freezes_the_startup_heap_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASGI_KIT_BENCH_GC_FREEZE=1 moves what startup built to the permanent generation."""
    monkeypatch.setenv(FACTORY_ENV, "benchmarks.suite.apps:create_app")
    monkeypatch.setenv(APP_ENV, "bare")
    monkeypatch.delenv(FREEZE_ENV, raising=False)
    gc.unfreeze()
    serving.create_app()
    assert gc.get_freeze_count() == 0
    monkeypatch.setenv(FREEZE_ENV, "1")
    try:
        serving.create_app()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_only_the_kit_app_freezes_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ASGI_KIT_BENCH_GC_FREEZE the kit app (LifespanHooksMiddleware) freezes at startup; bare does not."""
    monkeypatch.delenv(FREEZE_ENV, raising=False)
    frozen = {}
    for name in ("bare", "kit"):
        monkeypatch.setenv(APP_ENV, name)
        gc.unfreeze()
        app = create_app()
        try:
            sent = asyncio.run(run_lifespan(app))
            frozen[name] = gc.get_freeze_count() > 0
        finally:
            gc.unfreeze()
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert isinstance(app, LifespanHooksMiddleware) is (name == "kit")
    assert frozen == {"bare": False, "kit": True}


def test_process_helpers_find_measure_and_stop() -> None:
    """process_tree finds children, peak_rss reads memory, stop_process ends the tree by PID."""
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None
        child = int(process.stdout.readline())  # the child exists once its pid is printed
        tree = process_tree(process.pid)
        assert tree == [process.pid, child]
        assert peak_rss(tree) > 0
    finally:
        stop_process(process)
    assert process.poll() is not None
    stop_process(process)  # already stopped: a no-op


@pytest.mark.parametrize(
    "options",
    [{"workers": (0,)}, {"duration": 0}, {"repeats": 0}, {"loader": "ab"}],
)
def test_e2e_config_validates(options: dict[str, Any]) -> None:
    """Bad e2e options fail at construction."""
    with pytest.raises(ValueError):
        E2EConfig(**options)


def test_suite_apps_are_validated() -> None:
    """The suite serves bare, kit and peer only."""
    with pytest.raises(ValueError, match="apps"):
        SuiteE2E(apps=("other",))


def test_e2e_targets_from_rows() -> None:
    """Ratios over bare FastAPI, with limits on one worker and information only on two."""
    rows = [
        {"app": "bare", "workers": 1, "rps": 1000.0, "p99_ms": 2.0, "peak_rss_bytes": 100},
        {"app": "kit", "workers": 1, "rps": 600.0, "p99_ms": 3.0, "peak_rss_bytes": 110},
        {"app": "peer", "workers": 1, "rps": 100.0, "p99_ms": 9.0, "peak_rss_bytes": 140},
        {"app": "bare", "workers": 2, "rps": 1800.0, "p99_ms": 2.0, "peak_rss_bytes": 200},
    ]
    targets = {t["name"]: t for t in e2e_targets(rows)}
    assert targets["e2e_rps_kit_w1"]["passed"] is True and targets["e2e_rps_kit_w1"]["measured"] == 0.6
    assert targets["e2e_p99_kit_w1"]["passed"] is True
    assert targets["e2e_memory_w1"]["measured"] == 0.25 and targets["e2e_memory_w1"]["passed"] is True
    assert targets["e2e_rps_peer_w1"]["passed"] is None
    assert (
        targets["e2e_rps_kit_w2"]["measured"] is None and targets["e2e_rps_kit_w2"]["note"] == "not measured"
    )
