"""The report's machinery: a rich console and progress bar, the end-to-end table, JSON, matplotlib.

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


def us(value: float | None, digits: int = 2) -> str:
    """Nanoseconds as microseconds (``-`` when unknown)."""
    return "-" if value is None else f"{value / 1000:.{digits}f}"


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


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (matplotlib is needed only for plots)."""
    matplotlib = require("matplotlib", "bench")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


__all__ = [
    "e2e_cells",
    "make_console",
    "progress_bar",
    "pyplot",
    "render_e2e",
    "us",
    "write_json",
]
