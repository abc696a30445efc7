"""Turn a result JSON from ``asgi-kit bench --json`` into the markdown tables of docs/benchmarks.md.

python benchmarks/to_markdown.py benchmarks/results/<run>.json > tables.md
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def tables(result: dict[str, Any]) -> str:
    config, env = result["config"], result["environment"]
    other = "wall" if config.get("clock") == "cpu" else "cpu"
    out = [
        f"Run of {env['timestamp']}: Python {env['python']} on {env['platform']}, {env['cpu_count']} CPUs "
        f"(load average {', '.join(f'{x:.2f}' for x in env['loadavg'])} at the start, "
        f"{', '.join(f'{x:.2f}' for x in env.get('loadavg_after', []))} at the end); "
        f"{config['rounds']} rounds x {config['batch']} requests per variant after {config['warmup']} warm-up rounds, "
        f"GC {config['gc_mode']}, clock `{config.get('clock', 'wall')}` (the `{other}` column is the same batches on "
        f"the other clock); {result['duration_s']:.0f} s in all.",
        "",
        f"| variant | base | median µs | IQR µs | overhead µs | overhead µs ({other}) | what |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in result["variants"]:
        if row["status"] != "ok":
            out.append(f"| `{row['name']}` | {row['base'] or ''} | {row['status']} | | | | {row['note']} |")
            continue
        alt = row.get(other, {})
        out.append(
            f"| `{row['name']}` | {row['base'] or ''} | {_us(row['median_ns'])} | {_us(row['iqr_ns'])} | "
            f"{_us(row.get('overhead_ns'))} | {_us(alt.get('overhead_ns'))} | {row['description']} |"
        )
    out += ["", f"| target | measured | {other} clock | limit | result |", "|---|---:|---:|---:|---|"]
    for row in [*result["targets"], *((result.get("e2e") or {}).get("targets") or [])]:
        verdict = {True: "**pass**", False: "**FAIL**", None: "n/a"}[row["passed"]]
        limit = "-" if row["limit"] is None else f"{row['limit']:g}"
        alt = row.get(f"measured_{other}")
        out.append(
            f"| {row['description']} | {_ratio(row['measured'])} | {_ratio(alt)} | {limit} | {verdict} |"
        )
    e2e = result.get("e2e")
    if e2e:
        out += [
            "",
            f"End to end: loader `{e2e['loader']}`, {e2e['connections']} connections, {e2e['repeats']} alternated "
            f"runs of {e2e['duration_s']:g} s per app and mode (medians).",
            "",
            "| app | workers | gc | req/s | p50 ms | p99 ms | p99.9 ms | peak RSS MiB | errors |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in e2e["runs"]:
            rss = row["peak_rss_bytes"] / 2**20 if row.get("peak_rss_bytes") else None
            p999 = row.get("p999_ms")
            out.append(
                f"| {row['app']} | {row['workers']} | {row.get('gc', 'default')} | {row['rps']:.0f} | "
                f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {'-' if p999 is None else f'{p999:.2f}'} | "
                f"{'-' if rss is None else f'{rss:.1f}'} | {row['errors']} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        sys.stdout.write(tables(json.load(fh)))
