"""Run the peer comparison from a checkout: ``python -m benchmarks [options]`` or ``python benchmarks/run.py``.

    python -m benchmarks [--quick] [--e2e] [--rounds N] [--json FILE|-] [--plot FILE] [--only PATTERN]
                         [--database-url URL] [--e2e-gc both|default|freeze] [--e2e-workers N[,N]]

In-process by default (every kit layer, its peers, the stacks; see ``docs/benchmarks.md``);
``--e2e`` adds the uvicorn run. A full run without ``--json`` keeps its result in
``benchmarks/results/<UTC date and time>.json``. Exit status: 0, or 1 when a variant errored
(a layer that answers something else than 200, or fails to build), or when ``--check`` is
given and a target failed, or 2 for a usage error. A skipped variant (layer or peer not
installed, PostgreSQL not reachable) never fails the run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asgi_kit.bench.arguments import add_run_options

RESULTS = Path(__file__).resolve().parent / "results"


def _patterns(values: list[str] | None) -> tuple[str, ...]:
    return tuple(p.strip() for value in values or () for p in value.split(",") if p.strip())


def _worker_counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(
            f"worker counts must be integers >= 1, comma separated, got {value!r}"
        )
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="The peer comparison: each kit layer next to the libraries it replaces. "
        "In-process by default, --e2e adds uvicorn + wrk.",
    )
    add_run_options(
        parser, unit="variant", e2e_seconds="8", json_note="; default for a full run: benchmarks/results/"
    )
    parser.add_argument("--warmup", type=int, metavar="N", help="discarded warm-up rounds (default 3)")
    parser.add_argument(
        "--gc", choices=("collect", "disable"), default="collect", help="GC during timed batches"
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        action="append",
        help="fnmatch pattern(s) on variant names, comma separated",
    )
    parser.add_argument(
        "--e2e-workers",
        type=_worker_counts,
        metavar="N[,N]",
        help="uvicorn worker counts of the e2e run (default 1,2; --quick 1)",
    )
    parser.add_argument(
        "--e2e-gc",
        choices=("both", "default", "freeze"),
        default="both",
        help="default: each app as built (the kit's lifespan layer freezes its startup heap, the others "
        "do not); freeze: every server gc.freeze()s its startup heap; both (default): one after the other",
    )
    parser.add_argument(
        "--e2e-diagnostics",
        action="store_true",
        help="each server records its GC pauses and thread CPU times (in --json, under e2e.runs[].diagnostics)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL for the *.postgres variants (default: $ASGI_KIT_BENCH_DATABASE_URL, else the "
        "scratch database asgi_kit_bench on the local server, created when missing; unreachable: skipped)",
    )
    parser.add_argument("--list", action="store_true", help="list the variants and targets, then exit")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    return parser


def _list() -> int:
    from benchmarks.suite.variants import TARGETS, VARIANTS

    for variant in VARIANTS:
        print(f"{variant.name:34} {variant.group:10} base={variant.base or '-':13} {variant.description}")
    print()
    for target in TARGETS:
        limit = "info" if target.limit is None else f"<= {target.limit:g}"
        print(f"{target.name:24} {limit:8} {target.description}")
    return 0


def _database_url(given: str | None) -> str:
    from benchmarks.suite.database import DATABASE_URL_ENV, DEFAULT_DATABASE_URL

    return given or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def _json_destination(args: argparse.Namespace) -> str | None:
    """``--json``, else a new file in ``benchmarks/results/`` for a full run (a smoke run is not kept)."""
    if args.json or args.quick:
        return str(args.json) if args.json else None
    RESULTS.mkdir(exist_ok=True)
    return str(RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json")


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    from dataclasses import replace

    from asgi_kit.bench.driver import QUICK, BenchConfig
    from asgi_kit.bench.report import make_console, progress_bar, write_json
    from benchmarks.suite import driver
    from benchmarks.suite.e2e import QUICK_SUITE_E2E, SUITE_E2E, SuiteE2E, run_suite_e2e
    from benchmarks.suite.report import plot, render

    base = QUICK if args.quick else BenchConfig()
    overrides = {
        k: v
        for k, v in (("rounds", args.rounds), ("batch", args.batch), ("warmup", args.warmup))
        if v is not None
    }
    config = replace(base, gc_mode=args.gc, clock=args.clock, **overrides)
    destination = _json_destination(args)
    console = make_console(stderr=destination == "-")
    with progress_bar(console, "in-process") as update:
        result = driver.run_inprocess(
            config,
            only=_patterns(args.only),
            progress=update,
            database_url=_database_url(args.database_url),
        )
    if args.e2e:
        e2e_config = QUICK_SUITE_E2E if args.quick else SUITE_E2E
        e2e_overrides: dict[str, Any] = {
            k: v
            for k, v in (
                ("duration", args.e2e_duration),
                ("repeats", args.e2e_repeats),
                ("workers", args.e2e_workers),
            )
            if v is not None
        }
        e2e_overrides["gc_modes"] = ("default", "freeze") if args.e2e_gc == "both" else (args.e2e_gc,)
        e2e_overrides["diagnostics"] = args.e2e_diagnostics
        with progress_bar(console, "end-to-end") as update:
            result["e2e"] = run_suite_e2e(SuiteE2E(config=replace(e2e_config, **e2e_overrides)), update)
    render(result, console)
    if destination:
        write_json(result, destination)
        if destination != "-" and not args.json:
            console.print(f"result kept in {destination}")
    if args.plot:
        plot(result, args.plot)
        console.print(f"plot written to {args.plot}")
    errored = [row["name"] for row in result["variants"] if row["status"] == "error"]
    if errored:
        console.print(f"[red]errored variants: {', '.join(errored)}[/red]")
        return 1
    targets = [*result["targets"], *(result["e2e"] or {}).get("targets", [])]
    if args.check and any(row["passed"] is False for row in targets):
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, ImportError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    if not __package__:  # python benchmarks/run.py: the checkout, not benchmarks/, holds the package
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
