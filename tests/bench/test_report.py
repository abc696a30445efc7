"""Rendering: the rich tables (with pass/fail), JSON to a file and stdout, and the PNG plot."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from asgi_kit.bench.report import make_console, progress_bar, write_json
from benchmarks.suite.report import plot, render


def _result(with_e2e: bool = False) -> dict[str, Any]:
    variants = [
        {
            "name": "bare.asgi",
            "group": "base",
            "base": None,
            "description": "bare",
            "tokens": "cached",
            "status": "ok",
            "note": "",
            "n": 3,
            "median_ns": 3000.0,
            "iqr_ns": 100.0,
        },
        {
            "name": "kit.x",
            "group": "kit",
            "base": "bare.asgi",
            "description": "a kit layer",
            "tokens": "cached",
            "status": "ok",
            "note": "",
            "n": 3,
            "median_ns": 5000.0,
            "iqr_ns": 200.0,
            "overhead_ns": 2000.0,
            "overhead_iqr_ns": 300.0,
            "ratio_to_base": 1.67,
        },
        {
            "name": "peer.y",
            "group": "peer",
            "base": "bare.asgi",
            "description": "a peer",
            "tokens": "cold",
            "status": "ok",
            "note": "",
            "n": 3,
            "median_ns": 13000.0,
            "iqr_ns": 200.0,
            "overhead_ns": 10000.0,
            "overhead_iqr_ns": None,
            "ratio_to_base": 4.3,
        },
        {
            "name": "kit.noise",
            "group": "kit",
            "base": "bare.asgi",
            "description": "below the noise",
            "tokens": "cached",
            "status": "ok",
            "note": "",
            "n": 3,
            "median_ns": 2990.0,
            "iqr_ns": 100.0,
            "overhead_ns": -10.0,
            "overhead_iqr_ns": 50.0,
            "ratio_to_base": 0.99,
        },
        {
            "name": "kit.z",
            "group": "kit",
            "base": "bare.asgi",
            "description": "not landed",
            "tokens": "cached",
            "status": "skipped",
            "note": "asgi_kit.z is not importable",
            "n": 0,
        },
        {
            "name": "kit.w",
            "group": "kit",
            "base": "bare.asgi",
            "description": "broken",
            "tokens": "cached",
            "status": "error",
            "note": "check request answered 401",
            "n": 0,
        },
    ]
    targets = [
        {
            "name": "pass",
            "description": "x <= 0.3 y",
            "measured": 0.2,
            "measured_cpu": 0.123,
            "limit": 0.3,
            "passed": True,
            "numerator_ns": 2000.0,
            "denominator_ns": 10000.0,
            "note": "",
        },
        {
            "name": "fail",
            "description": "y <= 0.3 x",
            "measured": 5.0,
            "limit": 0.3,
            "passed": False,
            "numerator_ns": 10000.0,
            "denominator_ns": 2000.0,
            "note": "",
        },
        {
            "name": "na",
            "description": "z vs y",
            "measured": None,
            "limit": 0.3,
            "passed": None,
            "note": "not measured: kit.z",
        },
    ]
    result: dict[str, Any] = {
        "schema": "asgi-kit-bench/1",
        "config": {"rounds": 3, "batch": 10, "warmup": 1, "gc_mode": "collect"},
        "environment": {"python": "3.11", "platform": "linux", "cpu_count": 2, "loadavg": [1.0, 0.5, 0.2]},
        "variants": variants,
        "targets": targets,
        "e2e": None,
    }
    if with_e2e:
        result["e2e"] = {
            "loader": "builtin",
            "duration_s": 1.0,
            "repeats": 1,
            "connections": 4,
            "runs": [
                {
                    "app": "bare",
                    "workers": 1,
                    "rps": 1000.0,
                    "p50_ms": 1.0,
                    "p99_ms": 3.0,
                    "errors": 0,
                    "peak_rss_bytes": 50 * 2**20,
                },
                {
                    "app": "kit",
                    "workers": 1,
                    "rps": None,
                    "p50_ms": None,
                    "p99_ms": None,
                    "errors": 2,
                    "peak_rss_bytes": 0,
                },
            ],
            "targets": [
                {
                    "name": "e2e",
                    "description": "kit rps >= 0.5x bare",
                    "measured": 0.8,
                    "limit": 0.5,
                    "passed": True,
                    "note": "",
                }
            ],
        }
    return result


def _text(result: dict[str, Any]) -> str:
    console = Console(record=True, width=220)
    render(result, console)
    return console.export_text()


def test_render_shows_variants_targets_and_notes() -> None:
    """The table lists measured, skipped and errored variants, each target's verdict, and the notes."""
    text = _text(_result())
    assert "kit.x" in text and "2.00" in text and "1.67" in text
    assert "PASS" in text and "FAIL" in text and "n/a" in text
    assert "0.123" in text  # the same ratio on the other clock
    assert "skipped" in text and "asgi_kit.z is not importable" in text
    assert "Not measured" in text and "kit.w: error" in text


def test_render_includes_the_e2e_table_and_targets() -> None:
    """With an e2e section the uvicorn table and its targets are rendered too."""
    text = _text(_result(with_e2e=True))
    assert "End to end" in text and "1000" in text and "50.0" in text
    assert "kit rps >= 0.5x bare" in text


def test_write_json_to_a_file_and_stdout(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """--json FILE writes the document; --json - prints it to stdout."""
    result = _result()
    path = tmp_path / "out.json"
    write_json(result, str(path))
    assert json.loads(path.read_text()) == result
    write_json(result, "-")
    assert json.loads(capsys.readouterr().out) == result


@pytest.mark.parametrize("with_e2e", [False, True])
def test_plot_writes_a_png(tmp_path: Any, with_e2e: bool) -> None:
    """--plot writes a PNG with the overhead bars (and the e2e panel when present)."""
    path = tmp_path / "bench.png"
    plot(_result(with_e2e), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_accepts_updates() -> None:
    """The progress callback the drivers call updates the bar without printing noise."""
    console = make_console()
    with progress_bar(console, "test") as update:
        update(1, 2, "a")
        update(2, 2, "b")


def test_console_is_wide_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal the console is wide enough for the table, unless COLUMNS says otherwise."""
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(stderr=True).width == 180
