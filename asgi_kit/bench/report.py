"""Render a result document: a rich table with pass/fail targets, JSON, and a matplotlib plot.

rich is imported when a table or a progress bar is asked for, matplotlib only for ``--plot``
(with the non-interactive Agg backend), so the engine itself needs neither.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgi_kit._asgi.optional import require

if TYPE_CHECKING:
    from rich.console import Console

_GROUP_TITLES = {
    "base": "bases (what overhead is measured against)",
    "floor": "the floor",
    "kit": "kit layers alone",
    "kit-stack": "kit stacks",
    "peer": "peers alone",
    "peer-stack": "peer stacks",
}
_GROUP_COLOURS = {
    "floor": "#9e9e9e",
    "kit": "#1f77b4",
    "kit-stack": "#0b3d91",
    "peer": "#ff7f0e",
    "peer-stack": "#b34700",
}


def _us(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value / 1000:.{digits}f}"


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "[dim]n/a[/dim]"
    return "[bold green]PASS[/bold green]" if passed else "[bold red]FAIL[/bold red]"


def make_console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr, when stdout carries ``--json -``)."""
    require("rich", "bench")
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 180  # a log or a pipe: wide enough for the table, never wrapped at 80
    return console


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar; yields the ``progress(done, total, label)`` callback the drivers call."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[label]}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None, label="")

        def update(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, label=label)

        yield update


def render(result: dict[str, Any], console: Console) -> None:
    """Print the variants table, the targets table, the end-to-end table and every note."""
    from rich.table import Table

    env = result.get("environment", {})
    config = result.get("config", {})
    console.print(
        f"[bold]asgi-kit bench[/bold]  python {env.get('python')} on {env.get('platform')}, "
        f"{env.get('cpu_count')} CPUs, load {', '.join(f'{x:.2f}' for x in env.get('loadavg', []))}; "
        f"{config.get('rounds')} rounds x {config.get('batch')} requests, {config.get('warmup')} warm-up, "
        f"gc {config.get('gc_mode')}, clock {config.get('clock', 'wall')}"
    )
    variants = result.get("variants", [])
    if variants:
        clock = "process CPU time" if config.get("clock") == "cpu" else "wall time"
        table = Table(title=f"In-process cost per request (µs, {clock})", title_justify="left")
        # Shown only when a measured variant counts its store queries (the PostgreSQL ones).
        queries = any("store_queries_per_request" in row for row in variants)
        for column, justify in (
            ("variant", "left"),
            ("base", "left"),
            ("median", "right"),
            ("IQR", "right"),
            ("overhead", "right"),
            ("± paired IQR", "right"),
            ("x base", "right"),
            *((("queries/req", "right"),) if queries else ()),
            ("what", "left"),
        ):
            table.add_column(column, justify=justify, no_wrap=column == "variant")
        group = None
        for row in variants:
            if row["group"] != group:
                group = row["group"]
                table.add_section()
                table.add_row(f"[bold]{_GROUP_TITLES.get(group, group)}[/bold]")
            if row["status"] != "ok":
                style = "yellow" if row["status"] == "skipped" else "red"
                table.add_row(
                    row["name"],
                    row["base"] or "",
                    f"[{style}]{row['status']}[/{style}]",
                    "",
                    "",
                    "",
                    "",
                    *(("",) if queries else ()),
                    row["note"],
                )
                continue
            ratio = row.get("ratio_to_base")
            per_request = row.get("store_queries_per_request")
            table.add_row(
                row["name"],
                row["base"] or "",
                _us(row.get("median_ns")),
                _us(row.get("iqr_ns")),
                _us(row.get("overhead_ns")),
                _us(row.get("overhead_iqr_ns")),
                "-" if ratio is None else f"{ratio:.2f}",
                *(("-" if per_request is None else f"{per_request:.3f}",) if queries else ()),
                row["description"],
            )
        console.print(table)
    if result.get("e2e"):
        render_e2e(result["e2e"], console)
    targets = [*result.get("targets", []), *(result.get("e2e") or {}).get("targets", [])]
    if targets:
        render_targets(targets, console)
    notes = [row for row in variants if row["status"] != "ok"]
    if notes:
        console.print("[bold]Not measured[/bold]")
        for row in notes:
            console.print(f"  {row['name']}: {row['status']} - {row['note']}")


def render_targets(targets: list[dict[str, Any]], console: Console) -> None:
    from rich.table import Table

    table = Table(
        title="Targets from issue 7 (ratios measured side by side in this run)", title_justify="left"
    )
    for column in ("target", "measured", "other clock", "limit", "result", "detail"):
        table.add_column(
            column, justify="right" if column in ("measured", "other clock", "limit") else "left"
        )
    for row in targets:
        measured = row.get("measured")
        detail = row.get("note") or ""
        if row.get("kind") == "store_queries":
            pass  # the note says how many queries in how many requests
        elif "numerator_ns" in row:
            unit = row.get("unit", "µs")
            if unit == "µs absolute":
                detail = f"{_us(row['numerator_ns'])} µs"
            elif unit == "µs":
                detail = f"{_us(row['numerator_ns'])} / {_us(row['denominator_ns'])} µs"
            else:
                detail = f"{row['numerator_ns']:.3g} / {row['denominator_ns']:.3g} {unit}"
        alt = row.get("measured_cpu", row.get("measured_wall"))
        table.add_row(
            row["description"],
            "-" if measured is None else f"{measured:.3f}",
            "-" if alt is None else f"{alt:.3f}",
            "-" if row.get("limit") is None else f"{row['limit']:g}",
            _verdict(row.get("passed")),
            detail,
        )
    console.print(table)


def render_e2e(e2e: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    table = Table(
        title=f"End to end: uvicorn, loaded by {e2e.get('loader')} ({e2e.get('duration_s')}s x {e2e.get('repeats')} "
        f"alternated runs, {e2e.get('connections')} connections)",
        title_justify="left",
    )
    for column in ("app", "workers", "gc", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "peak RSS MiB", "errors"):
        table.add_column(column, justify="left" if column in ("app", "gc") else "right")
    for row in e2e.get("runs", []):
        table.add_row(*e2e_cells(row))
    console.print(table)


def e2e_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """One e2e table row: app, workers, GC mode, req/s, p50, p99, p99.9, peak RSS, errors."""

    def ms(key: str) -> str:
        return f"{row[key]:.2f}" if row.get(key) is not None else "-"

    return (
        row["app"],
        str(row["workers"]),
        str(row.get("gc", "default")),
        f"{row['rps']:.0f}" if row.get("rps") is not None else "-",
        ms("p50_ms"),
        ms("p99_ms"),
        ms("p999_ms"),
        f"{row['peak_rss_bytes'] / 2**20:.1f}" if row.get("peak_rss_bytes") else "-",
        str(row.get("errors", 0)),
    )


def write_json(result: dict[str, Any], destination: str) -> None:
    """Write the result as JSON to ``destination`` (``-`` for stdout)."""
    text = json.dumps(result, indent=2, sort_keys=False, default=str) + "\n"
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(destination).write_text(text, encoding="utf-8")


def plot(result: dict[str, Any], destination: str) -> None:
    """A PNG: overhead per variant (µs, log scale) with its paired IQR, coloured kit vs peers."""
    require("matplotlib", "bench")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.get("variants", []) if r["status"] == "ok" and r.get("overhead_ns") is not None]
    runs = (result.get("e2e") or {}).get("runs", [])
    panels = 2 if runs else 1
    height = max(3.0, 0.28 * len(rows) + 1.5)
    fig, axes = plt.subplots(panels, 1, figsize=(10, height + (3.5 if runs else 0)), squeeze=False)
    ax = axes[0][0]
    names = [r["name"] for r in rows]
    floor_us = 0.05  # a log axis cannot show zero: noise-level overheads sit here, hatched
    values = [max(r["overhead_ns"] / 1000, floor_us) for r in rows]
    errors = [(r.get("overhead_iqr_ns") or 0.0) / 2000 for r in rows]
    colours = [_GROUP_COLOURS.get(r["group"], "#555555") for r in rows]
    bars = ax.barh(names, values, xerr=errors, color=colours)
    for bar, value in zip(bars, values, strict=True):
        if value <= floor_us:
            bar.set_hatch("//")
            bar.set_alpha(0.4)
    ax.set_xlim(left=floor_us / 2)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(
        "overhead over its bare base, µs per request (log scale; error bar: paired IQR; hatched: <= 0.05)"
    )
    ax.set_title("asgi-kit bench: in-process overhead")
    ax.tick_params(axis="y", labelsize=8)
    if runs:
        ax2 = axes[1][0]
        labels = [f"{r['app']} ({r['workers']}w, gc {r.get('gc', 'default')})" for r in runs]
        ax2.barh(labels, [r.get("rps") or 0.0 for r in runs], color="#2ca02c")
        ax2.invert_yaxis()
        ax2.set_xlabel("requests/s under uvicorn (higher is better)")
    fig.tight_layout()
    fig.savefig(destination, dpi=110)
    plt.close(fig)


__all__ = [
    "e2e_cells",
    "make_console",
    "plot",
    "progress_bar",
    "render",
    "render_e2e",
    "render_targets",
    "write_json",
]
