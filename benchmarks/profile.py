"""Profile one variant's hot path: run it in a loop, under pyinstrument or for py-spy.

    python benchmarks/profile.py kit.stack.cached --seconds 10                  # pyinstrument tree
    py-spy record -r 2000 -f raw -o stacks.txt -- python benchmarks/profile.py kit.logging --plain
    python benchmarks/profile.py --lines stacks.txt                             # self time per line
    python benchmarks/profile.py layers:request_id,logging --seconds 5          # an ad-hoc kit stack

``--plain`` just runs the loop (for py-spy); ``--lines`` sums py-spy's raw stacks into the
lines of ``asgi_kit`` that cost the most self time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import re
import sys
import time
from pathlib import Path

if not __package__:  # python benchmarks/profile.py: the checkout, not benchmarks/, holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asgi_kit.bench.driver import Case, run_batch
from benchmarks.suite._apps import bare_asgi_app, bearer_values
from benchmarks.suite.driver import scopes
from benchmarks.suite.kit import wrap_kit
from benchmarks.suite.variants import BenchContext, Variant, get_variants


def loop(name: str, seconds: float) -> int:
    if name.startswith("layers:"):  # an ad-hoc kit stack, e.g. layers:request_id,logging
        layers = name.split(":", 1)[1].split(",")
        variant = Variant(
            name, "kit-stack", "bare.asgi", name, lambda ctx: wrap_kit(ctx, bare_asgi_app, layers)
        )
    else:
        (variant,) = get_variants([name])
    ctx = BenchContext()
    app = variant.build(ctx)
    pool = bearer_values(200_000 if variant.tokens == "cold" else 1, cold=variant.tokens == "cold")
    if variant.tokens != "cold":
        pool = pool * 200_000
    case = Case(name, app, scopes(pool, variant.principal))
    gc.collect()
    gc.freeze()
    runner = asyncio.new_event_loop()
    done, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop and done + 200 <= len(pool):
        runner.run_until_complete(run_batch(case, done, 200))
        done += 200
    runner.close()
    ctx.close()
    return done


def lines(path: str, top: int) -> None:
    self_time: collections.Counter[str] = collections.Counter()
    per_file: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as fh:
        raw_lines = fh.readlines()
    for raw in raw_lines:
        stack, _, count = raw.rstrip().rpartition(" ")
        frames = stack.split(";")
        if not any(f.startswith("run_batch ") for f in frames):
            continue  # start-up and imports, not the request path
        total += int(count)
        leaf = next((f for f in reversed(frames) if "asgi_kit/" in f and "asgi_kit/bench" not in f), None)
        if leaf:
            match = re.search(r"\((.*asgi_kit/.*):(\d+)\)", leaf)
            if match:
                where = match.group(1).split("asgi_kit/", 1)[1]
                self_time[f"{where}:{match.group(2)} {leaf.split(' ')[0]}"] += int(count)
                per_file[where] += int(count)
        else:
            per_file["(outside the kit: driver, app, event loop)"] += int(count)
    print(
        f"{total} request-path samples; innermost asgi_kit line of each (its time and the libraries below it):"
    )
    for key, count in self_time.most_common(top):
        print(f"{100 * count / total:6.2f}%  {key}")
    print("per file:")
    for key, count in per_file.most_common():
        print(f"{100 * count / total:6.2f}%  {key}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", nargs="?")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--lines", metavar="RAW")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.lines:
        lines(args.lines, args.top)
        return
    if args.plain:
        print(loop(args.variant, args.seconds), "requests")
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    count = loop(args.variant, args.seconds)
    profiler.stop()
    print(count, "requests")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
