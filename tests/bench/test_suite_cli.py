"""``python -m benchmarks``: options, outputs and exit status, driven through ``benchmarks.run.main``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks.run import main
from benchmarks.suite import driver
from benchmarks.suite._apps import bare_asgi_app
from benchmarks.suite.variants import Variant

FAST = ["--quick", "--rounds", "1", "--batch", "2", "--warmup", "0"]


def test_quick_run_writes_json_and_plot(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A quick run of a few variants prints the table and writes the JSON and the PNG."""
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    code = main(
        [
            *FAST,
            "--only",
            "kit.request_id,peer.correlation_id",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "kit.request_id" in printed and "request id <= 0.3x" in printed
    document = json.loads(out.read_text())
    assert {row["name"] for row in document["variants"]} == {
        "bare.asgi",
        "kit.request_id",
        "peer.correlation_id",
    }
    assert document["config"]["only"] == ["kit.request_id", "peer.correlation_id"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_json_to_stdout_keeps_stdout_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """--json - prints only the document on stdout; the table goes to stderr."""
    assert main([*FAST, "--only", "floor.*", "--json", "-", "--gc", "disable", "--clock", "cpu"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["config"]["gc_mode"] == "disable" and document["config"]["clock"] == "cpu"
    assert "floor.passthrough" in captured.err


def test_list_names_variants_and_targets(capsys: pytest.CaptureFixture[str]) -> None:
    """--list prints every variant and target without measuring anything."""
    assert main(["--list"]) == 0
    printed = capsys.readouterr().out
    assert "kit.stack.fastapi.cached" in printed and "stack_cold" in printed


def test_unknown_pattern_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--only that matches nothing exits 2 with the reason."""
    assert main([*FAST, "--only", "no.such.*"]) == 2
    assert "matches no variant" in capsys.readouterr().err


def test_errored_variant_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variant that errors makes the exit status 1 (so CI notices a layer that rotted)."""

    def broken(ctx: Any) -> Any:
        raise TypeError("layer changed shape")

    variants = (
        Variant("bare.asgi", "base", None, "bare", lambda ctx: bare_asgi_app),
        Variant("kit.broken", "kit", "bare.asgi", "broken", broken),
    )
    monkeypatch.setattr(driver, "VARIANTS", variants)
    assert main([*FAST]) == 1
    assert "errored variants: kit.broken" in capsys.readouterr().out


def test_check_fails_on_a_failed_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """--check turns a failed target into exit status 1; without it the run still passes."""
    monkeypatch.setattr(
        driver,
        "evaluate_targets",
        lambda overheads, targets=(): [
            {"name": "t", "description": "t", "measured": 9.0, "limit": 1.0, "passed": False}
        ],
    )
    assert main([*FAST, "--only", "floor.*"]) == 0
    assert main([*FAST, "--only", "floor.*", "--check"]) == 1


def test_e2e_flag_runs_the_end_to_end_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--e2e passes duration, repeats, workers, GC modes (both by default) and diagnostics on (stubbed servers)."""
    from benchmarks.suite import e2e

    seen: list[Any] = []

    def fake_run_e2e(run: Any, progress: Any = None) -> dict[str, Any]:
        config = run.config
        seen.append(config)
        progress(1, 1, "bare x1")
        return {
            "loader": "builtin",
            "duration_s": config.duration,
            "repeats": config.repeats,
            "connections": 8,
            "runs": [],
            "targets": [],
        }

    monkeypatch.setattr(e2e, "run_suite_e2e", fake_run_e2e)
    code = main(
        [
            *FAST,
            "--only",
            "floor.passthrough",
            "--e2e",
            "--e2e-duration",
            "0.5",
            "--e2e-repeats",
            "2",
        ]
    )
    assert code == 0
    assert seen[0].duration == 0.5 and seen[0].repeats == 2 and seen[0].workers == (1,)
    assert seen[0].gc_modes == ("default", "freeze") and seen[0].diagnostics is False
    assert "End to end" in capsys.readouterr().out
    assert main([*FAST, "--only", "floor.passthrough", "--e2e", "--e2e-workers", "1,2"]) == 0
    assert seen[-1].workers == (1, 2)
    for flag, modes in (("default", ("default",)), ("freeze", ("freeze",)), ("both", ("default", "freeze"))):
        argv = [*FAST, "--only", "floor.passthrough", "--e2e", "--e2e-gc", flag, "--e2e-diagnostics"]
        assert main(argv) == 0
        assert seen[-1].gc_modes == modes and seen[-1].diagnostics is True


def test_database_url_from_the_flag_then_the_environment_then_the_scratch_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--database-url wins over ASGI_KIT_BENCH_DATABASE_URL, which wins over the local scratch database."""
    from benchmarks.run import _database_url
    from benchmarks.suite.database import DATABASE_URL_ENV, DEFAULT_DATABASE_URL

    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert _database_url(None) == DEFAULT_DATABASE_URL
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://env@db/bench")
    assert _database_url(None) == "postgresql://env@db/bench"
    assert _database_url("postgresql://flag@db/bench") == "postgresql://flag@db/bench"


def test_an_unreachable_database_skips_its_variants_and_the_run_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The PostgreSQL variants of a run without a server skip (CI's --quick still exits 0), URL redacted."""
    url = "postgresql://bench:hunter2@127.0.0.1:1/asgi_kit_bench"
    assert main([*FAST, "--only", "kit.*.postgres*", "--database-url", url, "--json", "-"]) == 0
    captured = capsys.readouterr()
    rows = {row["name"]: row for row in json.loads(captured.out)["variants"]}
    assert rows["kit.auth.apikey.postgres"]["status"] == "skipped"
    assert rows["kit.budget.postgres.uncached"]["status"] == "skipped"
    assert "hunter2" not in captured.out + captured.err


@pytest.mark.parametrize("value", ["0", "a", "", "1,-2"])
def test_e2e_workers_must_be_positive_counts(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--e2e-workers refuses anything but comma-separated counts >= 1, naming the option."""
    with pytest.raises(SystemExit):
        main(["--e2e", "--e2e-workers", value])
    assert "--e2e-workers" in capsys.readouterr().err
