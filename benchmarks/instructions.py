"""Count the instructions each variant executes per request, under valgrind's cachegrind.

    python benchmarks/instructions.py                        # the stack targets' variants
    python benchmarks/instructions.py --json out.json --jobs 2
    python benchmarks/instructions.py kit.logging kit.stack.cached ...

Why: time measures work *and* how well that work fits the CPU's caches and branch predictors.
A stack runs the code of all its layers per request, so each layer finds less of its own code
and data still cached than when it runs alone; its time then exceeds the sum of the layers
alone even when it executes no extra instruction. The instruction count separates the two:
"the stack adds nothing of its own" is a statement about instructions, and it is checked here;
the time ratios of ``python -m benchmarks`` say what the hardware makes of them.

Method: each variant is built as the suite builds it (same app, same tokens, same tracer
provider with its batch processor, same JSON loggers), warmed with 300 requests, then run for
``--small`` and ``--large`` requests in two processes under ``valgrind --tool=cachegrind``; the
difference of the two totals divided by the difference of the counts is the instructions per
request, start-up and warm-up cancelled (with a fixed ``PYTHONHASHSEED``, so both processes lay
out their dicts and sets alike). Overhead = variant minus its base. Deterministic to a
fraction of a percent; slow (valgrind runs Python about 50 times slower), so it is not part of
CI. Needs ``valgrind`` (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if not __package__:  # python benchmarks/instructions.py: the checkout, not benchmarks/, holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asgi_kit.bench.driver import Case, run_batch
from benchmarks.suite.variants import TARGETS, Target, Variant, get_variants

WARMUP = 300
_IR = re.compile(r"I\s+refs:\s+([\d,]+)")
STACK_TARGETS = (
    "tracing_sdk_floor",
    "tracing_sdk_semconv",
    "kit_stack_sum_cold",
    "kit_stack_sum_cached",
    "peer_stack_sum_cold",
    "peer_stack_sum_cached",
    "stack_cold",
    "stack_cached",
    "stack_cached_tracing_floor",
)


def child(name: str, count: int, pool_size: int | None = None) -> None:
    """Run ``WARMUP + count`` requests of one variant (what valgrind measures).

    ``pool_size`` credentials are made first, whatever ``count`` is: minting a fresh token per
    request costs instructions too, and both runs of a variant must pay the same for it.
    """
    from benchmarks.suite.context import BenchContext
    from benchmarks.suite.driver import credentials, scopes

    (variant,) = get_variants([name])
    ctx = BenchContext()
    loop = asyncio.new_event_loop()
    built = variant.build(ctx)
    app = loop.run_until_complete(built) if asyncio.iscoroutine(built) else built
    pool = credentials(variant.tokens, max(pool_size or 0, WARMUP + count), ctx)
    case = Case(name, app, scopes(pool, variant.principal))
    gc.collect()
    gc.freeze()
    _, _, bad = loop.run_until_complete(run_batch(case, 0, WARMUP))
    _, _, bad2 = loop.run_until_complete(run_batch(case, WARMUP, count))
    loop.close()
    ctx.close()
    if bad or bad2:
        raise SystemExit(f"{name}: {bad + bad2} requests did not answer 200")


def count_instructions(name: str, count: int, pool_size: int) -> int:
    """Total instructions of a child run of ``count`` requests (``pool_size`` credentials made)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={tmp}/out",
                sys.executable,
                __file__,
                "--child",
                name,
                str(count),
                str(pool_size),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            # A fixed hash seed: otherwise set and dict layouts, and so the instructions spent
            # probing them, differ from one process to the next.
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    match = _IR.search(result.stderr)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"{name}: valgrind failed ({result.returncode}): {result.stderr[-800:]}")
    return int(match.group(1).replace(",", ""))


def per_request(name: str, small: int, large: int) -> float:
    pool_size = WARMUP + large
    return (count_instructions(name, large, pool_size) - count_instructions(name, small, pool_size)) / (
        large - small
    )


def _needed(targets: list[Target], names: list[str]) -> list[Variant]:
    wanted = set(names)
    for target in targets:
        wanted.add(target.numerator)
        wanted.update(target.denominators)
    variants = get_variants(sorted(wanted))
    bases = {v.base for v in variants if v.base is not None}
    return list(get_variants(sorted(wanted | bases)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="variants to count besides the stack targets' ones")
    parser.add_argument("--small", type=int, default=300, help="requests of the shorter run")
    parser.add_argument("--large", type=int, default=1300, help="requests of the longer run")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--json", metavar="FILE", help="write the counts and ratios as JSON")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "COUNT", "POOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if not 0 < args.small < args.large:
        raise SystemExit("--small must be > 0 and < --large")
    targets = [t for t in TARGETS if t.name in STACK_TARGETS]
    variants = _needed(targets, args.variants)

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    counts: dict[str, float] = {}
    with Progress(transient=True) as progress, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        task = progress.add_task("cachegrind", total=len(variants))
        futures = {v.name: pool.submit(per_request, v.name, args.small, args.large) for v in variants}
        for name, future in futures.items():
            counts[name] = future.result()
            progress.advance(task)

    by_name = {v.name: v for v in variants}
    overhead = {
        name: counts[name] - counts[v.base] if v.base is not None else 0.0 for name, v in by_name.items()
    }
    table = Table(title="Instructions per request (cachegrind)")
    for column in ("variant", "base", "instructions", "overhead"):
        table.add_column(column, justify="left" if column in ("variant", "base") else "right")
    for name, v in by_name.items():
        table.add_row(name, v.base or "-", f"{counts[name]:,.0f}", f"{overhead[name]:,.0f}")
    ratios = []
    results = Table(title="The stack targets, in instructions")
    for column in ("target", "measured", "limit", "result"):
        results.add_column(column)
    for target in targets:
        ratio = overhead[target.numerator] / sum(overhead[d] for d in target.denominators)
        passed = None if target.limit is None else ratio <= target.limit
        ratios.append(
            {"name": target.name, "description": target.description, "measured": ratio, "passed": passed}
        )
        verdict = "n/a" if passed is None else ("PASS" if passed else "FAIL")
        results.add_row(
            target.description, f"{ratio:.3f}", "-" if target.limit is None else str(target.limit), verdict
        )
    console = Console()
    console.print(table)
    console.print(results)
    if args.json:
        document = {
            "method": "cachegrind instructions per request",
            "small": args.small,
            "large": args.large,
            "instructions": counts,
            "overhead": overhead,
            "targets": ratios,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
