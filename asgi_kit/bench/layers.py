"""What your stack costs over your app, and each layer's share: ``asgi-kit bench --app ... --stack ...``.

The configurations measured, each built from the same app and the same
:class:`~asgi_kit.stack.Stack`:

- ``app``: the app alone (what the stack's cost is measured against);
- ``stack``: the app wrapped in the whole stack;
- ``without <layer>``: the stack rebuilt with that one layer left out.

A layer's share is what leaving it out saves: ``stack - without <layer>``, in µs per request
and as a part of the stack's own cost (``stack - app``). The shares need not add up to the
whole: layers interact (one that rejects early spares the others; two that read the same
header share the cost of finding it).

In process, every configuration is timed by :mod:`asgi_kit.bench.driver` (interleaved, both
clocks) after its lifespan has started, as a server would; what the app writes to stdout and
stderr meanwhile (access logs) is discarded, so the numbers include formatting a log line but
not a terminal. End to end (:mod:`asgi_kit.bench.e2e`) each configuration runs in its own
uvicorn, built by :func:`serve_configuration`.

Every answer must have the expected status (200 unless told): a layer that rejects the
request (authentication without credentials) would make the numbers time a rejection, so the
run says which configuration answered what, and which layer rejects, instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from asgi_kit._asgi.types import ASGIApp, Message, Scope
from asgi_kit.bench.driver import (
    BenchConfig,
    Case,
    Progress,
    Timing,
    check_cases,
    close_loop,
    environment,
    summarize,
    time_checked,
)
from asgi_kit.bench.e2e import E2EConfig, ServedApp, run_e2e
from asgi_kit.bench.report import pyplot, render_e2e, us
from asgi_kit.bench.request import BenchRequest
from asgi_kit.bench.serving import import_object
from asgi_kit.stack import Stack

if TYPE_CHECKING:
    from rich.console import Console

RESULT_SCHEMA: Final = "asgi-kit-bench-layers/1"
APP_ENV: Final = "ASGI_KIT_BENCH_APP"
STACK_ENV: Final = "ASGI_KIT_BENCH_STACK"
CONFIGURATION_ENV: Final = "ASGI_KIT_BENCH_CONFIGURATION"
APP: Final = "app"
STACK: Final = "stack"
LIFESPAN_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Configuration:
    """One way of building the app: alone, in the whole stack, or with layer ``left_out`` left out."""

    name: str
    layer: str | None = None
    left_out: int | None = None

    def build(self, app: ASGIApp, stack: Stack | None) -> ASGIApp:
        if self.name == APP or stack is None:
            return app
        layers = [layer for index, layer in enumerate(stack) if index != self.left_out]
        return Stack(layers).wrap(app)


def layer_names(stack: Stack) -> list[str]:
    """Each layer's name (its class), numbered when a class appears more than once."""
    names = [layer.name for layer in stack]
    return [
        name if names.count(name) == 1 else f"{name} #{names[: index + 1].count(name)}"
        for index, name in enumerate(names)
    ]


def configurations(stack: Stack | None) -> list[Configuration]:
    """The app alone, then (with a stack) the whole stack and the stack without each layer."""
    if stack is None:
        return [Configuration(APP)]
    return [
        Configuration(APP),
        Configuration(STACK),
        *(Configuration(f"without {name}", name, index) for index, name in enumerate(layer_names(stack))),
    ]


def load_target(app_reference: str, stack_reference: str | None) -> tuple[ASGIApp, Stack | None]:
    """The app and the stack ``module:attribute`` references name (checked for what they are)."""
    app = import_object(app_reference)
    if isinstance(app, Stack) or not callable(app):
        raise ValueError(f"--app {app_reference} must name an ASGI app, got {type(app).__name__}")
    if stack_reference is None:
        return app, None
    stack = import_object(stack_reference)
    if not isinstance(stack, Stack):
        raise ValueError(f"--stack {stack_reference} must name an asgi_kit.Stack, got {type(stack).__name__}")
    if not len(stack):
        raise ValueError(f"--stack {stack_reference} is empty: there is no layer to measure")
    return app, stack


def serve_configuration() -> ASGIApp:
    """The e2e servers' factory: the configuration ``ASGI_KIT_BENCH_CONFIGURATION`` names, built."""
    app, stack = load_target(os.environ[APP_ENV], os.environ.get(STACK_ENV) or None)
    wanted = os.environ.get(CONFIGURATION_ENV, APP)
    for configuration in configurations(stack):
        if configuration.name == wanted:
            return configuration.build(app, stack)
    raise ValueError(f"{CONFIGURATION_ENV}={wanted!r} names no configuration of this stack")


class Lifespan:
    """Runs an app's lifespan as a server does: startup before the requests, shutdown after.

    An app that does not speak the lifespan protocol (it raises or returns at once) is served
    without one, as uvicorn's ``--lifespan auto`` does; one that reports a failed startup is
    an error.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        #: what the app raised in its lifespan (an app without lifespan support raises at once)
        self.error: Exception | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._to_app.get, self._from_app.put)
        except Exception as exc:  # an app without lifespan support: served without one
            self.error = exc
        finally:
            await self._from_app.put(None)

    async def _exchange(self, kind: str) -> Message | None:
        await self._to_app.put({"type": kind})
        return await asyncio.wait_for(self._from_app.get(), LIFESPAN_TIMEOUT)

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        answer = await self._exchange("lifespan.startup")
        if answer is None:
            self._task = None
        elif answer["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"lifespan startup failed: {answer.get('message', '')}")

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        with contextlib.suppress(asyncio.TimeoutError):
            await self._exchange("lifespan.shutdown")
            await asyncio.wait_for(task, LIFESPAN_TIMEOUT)


@contextmanager
def output_discarded(console: Console) -> Iterator[None]:
    """Send what is written to file descriptors 1 and 2 to the null device; ``console`` keeps its stream.

    Where the standard streams are not file descriptors (a test's captured output), nothing
    is redirected.
    """
    try:
        console_fd = console.file.fileno()
        sys.stdout.flush()
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        yield
        return
    original = console.file
    console.file = os.fdopen(os.dup(console_fd), "w", encoding=getattr(original, "encoding", None) or "utf-8")
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
        console.file.close()
        console.file = original


def _scopes(request: BenchRequest, state: dict[str, Any]) -> Callable[[int], Scope]:
    if not state:
        return lambda index: request.scope()
    # uvicorn gives every request a shallow copy of the state the lifespan filled.
    return lambda index: request.scope((), {"state": dict(state)})


def _base(configuration: Configuration) -> str | None:
    if configuration.name == APP:
        return None
    return APP if configuration.name == STACK else STACK


def measure_inprocess(
    app: ASGIApp,
    stack: Stack | None,
    request: BenchRequest,
    config: BenchConfig,
    *,
    expect_status: int = 200,
    progress: Progress | None = None,
) -> list[tuple[Configuration, Timing | str]]:
    """Each configuration with its timing, or the reason it could not be built or started."""
    loop = asyncio.new_event_loop()
    wanted = configurations(stack)
    failures: dict[str, str] = {}
    lifespans: list[Lifespan] = []
    try:
        cases: list[Case] = []
        for configuration in wanted:
            try:
                built = configuration.build(app, stack)
                lifespan = Lifespan(built)
                loop.run_until_complete(lifespan.start())
            except Exception as exc:
                failures[configuration.name] = f"could not start: {type(exc).__name__}: {exc}"
                continue
            lifespans.append(lifespan)
            scopes = _scopes(request, lifespan.state)
            cases.append(
                Case(configuration.name, built, scopes, request.body, _base(configuration), expect_status)
            )
        checked = check_cases(cases, config, loop)
        # The whole stack (or the app, without one) is what the others are compared with.
        reference = APP if stack is None else STACK
        if any(t.ok for t in checked if t.case.name == reference):
            time_checked(checked, config, loop, progress)
        else:
            for timing in checked:
                if timing.ok:
                    timing.fail("skipped", f"not timed: the {reference} failed its check")
        timings = {t.case.name: t for t in checked}
    finally:
        try:
            for lifespan in reversed(lifespans):
                loop.run_until_complete(lifespan.stop())
        finally:
            close_loop(loop)
    return [(c, timings[c.name] if c.name in timings else failures[c.name]) for c in wanted]


def problems(document: dict[str, Any]) -> list[str]:
    """What makes the numbers meaningless or incomplete, as sentences for the user."""
    rows = {row["name"]: row for row in document["configurations"]}
    request, expected = document["request"], document["expect_status"]
    asked = f"{request['method']} {request['target']}"
    app, stack = rows.get(APP), rows.get(STACK)
    stack_ok = stack is not None and stack["status"] == "ok"
    out: list[str] = []
    if app is not None and app["status"] == "error":
        if "answered" not in app:  # it could not start
            out.append(f"the app alone {app['note']}")
        elif app["answered"] and stack_ok:
            out.append(
                f"the app alone answers {app['answered']} to {asked}, not {expected}: the whole stack's "
                f"cost over it is unknown (each layer's share is measured)."
            )
        else:
            out.append(
                f"the app alone: {app['note']}. Pick a request it serves (--request 'GET /path'), "
                f"or --expect-status to time that answer."
            )
    if stack is not None and not stack_ok:
        answered = stack.get("answered")
        # The layers whose absence lets the request through are the ones rejecting it.
        rejecting = [
            row["layer"]
            for row in document["configurations"]
            if row.get("layer") and answered and row.get("answered") == expected
        ]
        if rejecting:
            out.append(
                f"the stack answers {answered} to {asked} (expected {expected}): "
                f"{', '.join(rejecting)} rejects it, so its numbers would time a rejection. Send what "
                f"it needs (--header 'Authorization: Bearer ...'), or --expect-status {answered} "
                f"to time the rejection itself."
            )
        else:
            out.append(f"the whole stack: {stack['note']}")
    if stack_ok:
        out.extend(
            f"{row['layer']}'s share is unknown (the stack without it: {row['note']})"
            for row in document["configurations"]
            if row.get("layer") and row["status"] != "ok"
        )
    return out


def run_layers(
    app_reference: str,
    stack_reference: str | None,
    request: BenchRequest,
    config: BenchConfig,
    *,
    expect_status: int = 200,
    e2e: E2EConfig | None = None,
    app_dir: str = ".",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure the configurations of ``app_reference`` in ``stack_reference``; the result document.

    ``progress`` is called by the in-process phase, then by the end-to-end one.
    """
    started = time.perf_counter()
    env = environment(("asgi-kit", "uvicorn"))
    app, stack = load_target(app_reference, stack_reference)
    measured = measure_inprocess(app, stack, request, config, expect_status=expect_status, progress=progress)
    document: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "mode": "layers",
        "app": app_reference,
        "stack": stack_reference,
        "layers_in_order": layer_names(stack) if stack is not None else [],
        "request": request.describe(),
        "expect_status": expect_status,
        "config": asdict(config),
        "environment": env,
        "configurations": _configuration_rows(measured, config.clock),
        "e2e": None,
    }
    document["layers"] = _shares(document["configurations"])
    document["problems"] = problems(document)
    if e2e is not None:
        healthy = [row["name"] for row in document["configurations"] if row["status"] == "ok"]
        if (APP if stack is None else STACK) in healthy:
            shared = {APP_ENV: app_reference, STACK_ENV: stack_reference or ""}
            path = (os.path.abspath(app_dir),)
            served = [
                ServedApp(
                    name,
                    "asgi_kit.bench.layers:serve_configuration",
                    {**shared, CONFIGURATION_ENV: name},
                    path,
                )
                for name in healthy
            ]
            document["e2e"] = run_e2e(served, request, e2e, progress, expect_status=expect_status)
            _add_e2e_deltas(document)
    document["environment"]["loadavg_after"] = environment(())["loadavg"]
    document["duration_s"] = round(time.perf_counter() - started, 3)
    return document


def _configuration_rows(
    measured: Sequence[tuple[Configuration, Timing | str]], clock: str
) -> list[dict[str, Any]]:
    timings = [result for _, result in measured if isinstance(result, Timing)]
    summaries = {row["name"]: row for row in summarize(timings, clock)}
    rows: list[dict[str, Any]] = []
    for configuration, result in measured:
        if isinstance(result, Timing):
            row = {**summaries[configuration.name], "answered": result.answered}
        else:
            row = {"name": configuration.name, "base": None, "status": "error", "note": result, "n": 0}
        row["layer"] = configuration.layer
        rows.append(row)
    return rows


def _shares(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each layer's share: the stack's time minus the time without it, in ns and as a part of the stack's cost."""
    stack = next((row for row in rows if row["name"] == STACK), None)
    whole = stack.get("overhead_ns") if stack is not None and stack["status"] == "ok" else None
    shares: list[dict[str, Any]] = []
    for row in rows:
        if not row.get("layer"):
            continue
        share: dict[str, Any] = {"layer": row["layer"], "status": row["status"], "note": row["note"]}
        if row["status"] == "ok" and row.get("overhead_ns") is not None:
            share["share_ns"] = -row["overhead_ns"]
            share["share_iqr_ns"] = row.get("overhead_iqr_ns")
            share["share_pct"] = 100 * share["share_ns"] / whole if whole and whole > 0 else None
        shares.append(share)
    return shares


def _add_e2e_deltas(document: dict[str, Any]) -> None:
    """Each layer's end-to-end share: how requests/s and p99 change with it (the first workers and GC mode)."""
    runs = document["e2e"]["runs"]
    workers, gc_mode = runs[0]["workers"], runs[0].get("gc")
    by_name = {row["app"]: row for row in runs if row["workers"] == workers and row.get("gc") == gc_mode}
    stack = by_name.get(STACK)

    def delta(without: dict[str, Any] | None, within: dict[str, Any] | None) -> dict[str, float | None]:
        if without is None or within is None:
            return {"rps_delta": None, "p99_delta_ms": None}
        rps = (within["rps"] - without["rps"]) if without.get("rps") and within.get("rps") else None
        p99 = (
            (within["p99_ms"] - without["p99_ms"]) if without.get("p99_ms") and within.get("p99_ms") else None
        )
        return {"rps_delta": rps, "p99_delta_ms": p99}

    for share in document["layers"]:
        share["e2e"] = delta(by_name.get(f"without {share['layer']}"), stack)
    document["stack_e2e"] = delta(by_name.get(APP), stack)


def render(document: dict[str, Any], console: Console) -> None:
    """The layers table (and the end-to-end one), then what went wrong, if anything."""
    from rich.table import Table

    env, config = document["environment"], document["config"]
    request = document["request"]
    console.print(
        f"[bold]asgi-kit bench[/bold] {document['app']}"
        + (f" in {document['stack']}" if document["stack"] else "")
        + f", {request['method']} {request['target']} expecting {document['expect_status']}; "
        f"python {env['python']}, {env['cpu_count']} CPUs; {config['rounds']} rounds x {config['batch']} "
        f"requests, clock {config['clock']}"
    )
    rows = {row["name"]: row for row in document["configurations"]}
    expected = document["expect_status"]
    e2e = document.get("e2e") is not None
    clock = "process CPU time" if config["clock"] == "cpu" else "wall time"
    table = Table(title=f"What each layer costs, in process (µs per request, {clock})", title_justify="left")
    for column in (
        "layer",
        "µs/request",
        "± IQR",
        "share",
        *(("e2e Δ req/s", "e2e Δ p99 ms") if e2e else ()),
    ):
        table.add_column(column, justify="left" if column == "layer" else "right")

    def e2e_cells(values: dict[str, Any] | None) -> tuple[str, ...]:
        if not e2e:
            return ()
        values = values or {}
        rps, p99 = values.get("rps_delta"), values.get("p99_delta_ms")
        return ("-" if rps is None else f"{rps:+.0f}", "-" if p99 is None else f"{p99:+.2f}")

    for share in document["layers"]:
        if "share_ns" not in share:
            table.add_row(
                share["layer"],
                _failed(rows[f"without {share['layer']}"], expected),
                "",
                "",
                *(("", "") if e2e else ()),
            )
            continue
        pct = share.get("share_pct")
        table.add_row(
            share["layer"],
            us(share["share_ns"]),
            us(share.get("share_iqr_ns")),
            "-" if pct is None else f"{pct:.0f}%",
            *e2e_cells(share.get("e2e")),
        )
    stack, app = rows.get(STACK), rows.get(APP)
    if stack is not None:
        table.add_section()
        if stack["status"] == "ok":
            shares = [s["share_ns"] for s in document["layers"] if "share_ns" in s]
            whole = stack.get("overhead_ns")
            table.add_row(
                "[bold]the whole stack[/bold]",
                us(whole),
                us(stack.get("overhead_iqr_ns")),
                "100%",
                *e2e_cells(document.get("stack_e2e")),
            )
            if whole and whole > 0 and len(shares) == len(document["layers"]):
                table.add_row("the shares added up", us(sum(shares)), "", f"{100 * sum(shares) / whole:.0f}%")
        else:
            table.add_row("[bold]the whole stack[/bold]", _failed(stack, expected), "", "")
    if app is not None:
        cell = us(app.get("median_ns")) if app["status"] == "ok" else _failed(app, expected)
        table.add_row("the app alone", cell, us(app.get("iqr_ns")), "")
    console.print(table)
    if stack is None:
        console.print("the app alone is timed: name its stack with --stack for each layer's share")
    if e2e:
        console.print(
            "e2e Δ: the stack's requests/s and p99 minus the stack's without the layer (the whole stack: "
            "minus the app's); every configuration below."
        )
        render_e2e(document["e2e"], console)
    for problem in document["problems"]:
        console.print(f"[red]{problem}[/red]")


def _failed(row: dict[str, Any], expected: int) -> str:
    """A configuration without a number: what it answered, or why it has none (the notes say more)."""
    answered = row.get("answered")
    if answered and answered != expected:
        return f"[red]answered {answered}[/red]"
    if row["status"] == "error":
        return "[red]failed[/red]"
    return "-"  # not timed, or timed with nothing to compare it with


def plot(document: dict[str, Any], destination: str) -> None:
    """A PNG: each layer's share and the whole stack's cost, µs per request."""
    plt = pyplot()
    shares = [s for s in document["layers"] if "share_ns" in s]
    stack = next((row for row in document["configurations"] if row["name"] == STACK), None)
    names = [s["layer"] for s in shares]
    values = [s["share_ns"] / 1000 for s in shares]
    errors = [(s.get("share_iqr_ns") or 0.0) / 2000 for s in shares]
    colours = ["#1f77b4"] * len(shares)
    if stack is not None and stack.get("overhead_ns") is not None:
        names.append("the whole stack")
        values.append(stack["overhead_ns"] / 1000)
        errors.append((stack.get("overhead_iqr_ns") or 0.0) / 2000)
        colours.append("#0b3d91")
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.4 * len(names) + 1.2)))
    ax.barh(names, values, xerr=errors, color=colours)
    ax.invert_yaxis()
    ax.axvline(0, color="#555555", linewidth=0.8)
    ax.set_xlabel(
        "µs per request in process (a layer: the stack minus the stack without it; bar: paired IQR)"
    )
    ax.set_title(
        f"asgi-kit bench: {document['app']}" + (f" in {document['stack']}" if document["stack"] else "")
    )
    fig.tight_layout()
    fig.savefig(destination, dpi=110)
    plt.close(fig)


__all__ = [
    "RESULT_SCHEMA",
    "Configuration",
    "Lifespan",
    "configurations",
    "layer_names",
    "load_target",
    "measure_inprocess",
    "output_discarded",
    "plot",
    "problems",
    "render",
    "run_layers",
    "serve_configuration",
]
