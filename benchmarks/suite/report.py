"""The peer comparison's report: the variants by group, the targets with pass/fail, a plot.

The console, progress bar, end-to-end table and JSON are the kit's (:mod:`asgi_kit.bench.report`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgi_kit.bench.report import pyplot, render_e2e, us

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


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "[dim]n/a[/dim]"
    return "[bold green]PASS[/bold green]" if passed else "[bold red]FAIL[/bold red]"


def render(result: dict[str, Any], console: Console) -> None:
    """Print the variants table, the targets table, the end-to-end table and every note."""
    from rich.table import Table

    env = result.get("environment", {})
    config = result.get("config", {})
    console.print(
        f"[bold]peer comparison[/bold]  python {env.get('python')} on {env.get('platform')}, "
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
                us(row.get("median_ns")),
                us(row.get("iqr_ns")),
                us(row.get("overhead_ns")),
                us(row.get("overhead_iqr_ns")),
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
                detail = f"{us(row['numerator_ns'])} µs"
            elif unit == "µs":
                detail = f"{us(row['numerator_ns'])} / {us(row['denominator_ns'])} µs"
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


def plot(result: dict[str, Any], destination: str) -> None:
    """A PNG: overhead per variant (µs, log scale) with its paired IQR, coloured kit vs peers."""
    plt = pyplot()
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


__all__ = ["plot", "render", "render_targets"]
