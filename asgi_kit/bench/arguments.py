"""The command-line options every benchmark command shares, named and explained once.

``asgi-kit bench`` (your stack) and ``python -m benchmarks`` (the peer comparison, from a
checkout) both take them; each adds its own.
"""

from __future__ import annotations

import argparse


def add_run_options(
    parser: argparse.ArgumentParser,
    *,
    unit: str,
    e2e_seconds: str,
    json_note: str = "",
) -> None:
    """``--quick``, ``--e2e``, ``--rounds``, ``--batch``, ``--clock``, ``--json``, ``--plot``,
    ``--e2e-duration`` and ``--e2e-repeats``; ``unit`` is what one timed app is called in the help
    (``variant``, ``configuration``)."""
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (tiny rounds)")
    parser.add_argument("--e2e", action="store_true", help=f"also serve each {unit} with uvicorn")
    parser.add_argument("--rounds", type=int, metavar="N", help="timed rounds (default 30, quick 3)")
    parser.add_argument("--batch", type=int, metavar="N", help=f"requests per {unit} per round (default 200)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="the clock the results use: wall time (perf_counter) or process CPU time; both are in --json",
    )
    parser.add_argument(
        "--json", metavar="FILE|-", help=f"write the result document as JSON ('-': stdout{json_note})"
    )
    parser.add_argument("--plot", metavar="FILE", help="write a PNG plot (matplotlib)")
    parser.add_argument(
        "--e2e-duration", type=float, metavar="S", help=f"seconds per e2e load run (default {e2e_seconds})"
    )
    parser.add_argument(
        "--e2e-repeats", type=int, metavar="N", help=f"alternated e2e runs per {unit} (default 3)"
    )


__all__ = ["add_run_options"]
