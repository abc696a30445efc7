"""Run the included overhead suite from a checkout: ``python benchmarks/run.py [asgi-kit bench options]``.

A thin wrapper around ``asgi-kit bench`` (see ``benchmarks/README.md``). Without ``--json`` it
writes the result to ``benchmarks/results/<UTC date and time>.json`` so real runs are kept.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from asgi_kit.cli import main


def run(argv: list[str]) -> int:
    if "--json" not in argv and "--list" not in argv:
        results = Path(__file__).resolve().parent / "results"
        results.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        argv = [*argv, "--json", str(results / f"{stamp}.json")]
    return main(["bench", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
