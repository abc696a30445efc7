"""End-to-end mode: uvicorn subprocesses serving bare FastAPI, the kit stack and the peer stack.

Each app runs in its own uvicorn (one worker, then ``--workers 2``), started once per mode.
The load comes from another process: ``wrk`` when it is installed, otherwise a bounded
built-in asyncio HTTP/1.1 keep-alive load generator running in this process. Runs are
alternated A/B/C (the order rotates every repeat), so drift lands on every app alike.

Every app is served in two GC modes (``gc_modes``): ``default``, each app as its users build
it (the kit app freezes its startup heap through its lifespan layer, bare FastAPI and the
peer stack leave the collector alone), and ``freeze``, every server ``gc.freeze()``s its
startup heap alike. The targets use the ``default`` figures. Each run reports requests/s and
latency p50/p99/p99.9 (wrk through a small Lua ``done()`` hook, since ``--latency`` stops at
p99; the built-in loader from every request's latency); peak memory is the sum of ``VmHWM``
(Linux) over the server's process tree, or the largest RSS psutil saw elsewhere. Every
process is started in its own session and stopped by PID, with bounded waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from asgi_kit.bench._apps import BASE_HEADERS, PATH, mint_token
from asgi_kit.bench.apps import APP_ENV, DIAGNOSTICS_ENV, E2E_APPS, FREEZE_ENV

Progress = Callable[[int, int, str], None]
QUERY: Final = "?verbose=1"
_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
GC_MODES: Final = ("default", "freeze")
#: The latency points both loaders report (percentiles, then the slowest request).
POINTS: Final = ("50", "90", "99", "99.9", "99.99", "max")
# wrk's --latency table stops at p99: its done() hook reads any percentile from the same
# HdrHistogram (values in microseconds).
WRK_SCRIPT: Final = """done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 99, 99.9, 99.99}) do
    io.write(string.format("asgi-kit-latency %g %d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("asgi-kit-latency max %d\\n", latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class E2EConfig:
    """How long to load each app, with what, and in which modes."""

    apps: tuple[str, ...] = ("bare", "kit", "peer")
    workers: tuple[int, ...] = (1, 2)
    duration: float = 8.0
    warmup: float = 2.0
    repeats: int = 3
    connections: int = 32
    loader: str = "auto"
    startup_timeout: float = 30.0
    max_requests: int = 1_000_000
    #: ``default``: each app as built (only the kit's lifespan layer freezes); ``freeze``: every
    #: server gc.freeze()s its startup heap alike (see asgi_kit.bench.apps)
    gc_modes: tuple[str, ...] = GC_MODES
    #: record GC pauses and thread CPU time in every server (asgi_kit.bench.apps.Diagnostics)
    diagnostics: bool = False

    def __post_init__(self) -> None:
        unknown = [a for a in self.apps if a not in E2E_APPS]
        if unknown or not self.apps:
            raise ValueError(f"apps must be among {', '.join(E2E_APPS)}, got {self.apps!r}")
        if not self.workers or any(w < 1 for w in self.workers):
            raise ValueError("workers must hold counts >= 1")
        if self.duration <= 0 or self.warmup < 0 or self.repeats < 1 or self.connections < 1:
            raise ValueError("duration and connections must be > 0, warmup >= 0, repeats >= 1")
        if self.loader not in ("auto", "wrk", "builtin"):
            raise ValueError("loader must be 'auto', 'wrk' or 'builtin'")
        if not self.gc_modes or any(m not in GC_MODES for m in self.gc_modes):
            raise ValueError(f"gc_modes must hold modes among {', '.join(GC_MODES)}, got {self.gc_modes!r}")


QUICK_E2E: Final = E2EConfig(workers=(1,), duration=1.0, warmup=0.5, repeats=1, connections=8)


@dataclass(slots=True)
class LoadResult:
    """One load run against one server."""

    requests: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int = 0
    p999_ms: float | None = None
    #: latency in ms at each of ``POINTS`` that the loader reported
    distribution: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class _Server:
    app: str
    workers: int
    port: int
    process: subprocess.Popen[bytes]
    gc_mode: str = "default"
    loads: list[LoadResult] = field(default_factory=list)
    peak_rss: int = 0
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request_headers(token: str) -> list[tuple[str, str]]:
    """The headers every e2e request carries: the usual ones and a reused bearer token."""
    headers = [(k.decode(), v.decode()) for k, v in BASE_HEADERS if k != b"host"]
    return [*headers, ("Authorization", f"Bearer {token}")]


# --------------------------------------------------------------------------- processes


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (psutil when installed, else ``/proc/<pid>/task/*/children``)."""
    try:
        psutil: Any = importlib.import_module("psutil")
    except ImportError:
        return _proc_tree(pid)
    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


def _proc_tree(pid: int) -> list[int]:
    found = [pid]
    for current in found:  # the list grows while we walk it: breadth-first
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    found.extend(int(child) for child in fh.read().split())
        except OSError:
            continue
    return found


def peak_rss(pids: Sequence[int]) -> int:
    """Peak resident memory of ``pids`` in bytes: the sum of ``VmHWM``, or psutil's current RSS."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
                        break
            continue
        except OSError:
            pass
        # No /proc (not Linux): the current RSS is the best psutil can tell.
        with contextlib.suppress(Exception):
            total += int(importlib.import_module("psutil").Process(pid).memory_info().rss)
    return total


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a server by PID: SIGTERM, a bounded wait, then SIGKILL to it and its children."""
    if process.poll() is not None:
        return
    children = process_tree(process.pid)[1:]
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def _wait_ready(server: _Server, token: str, deadline: float) -> None:
    request = _http_request(server.port, request_headers(token))
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn for {server.app!r} exited with {server.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as sock:
                sock.sendall(request)
                head = sock.recv(64)
            if head.startswith(b"HTTP/1.1 200"):
                return
            raise RuntimeError(f"{server.app!r} answered {head[:40]!r} instead of 200")
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"uvicorn for {server.app!r} did not get ready in time")


@contextmanager
def serve(
    app: str,
    workers: int,
    token: str,
    startup_timeout: float = 30.0,
    *,
    gc_mode: str = "default",
    diagnostics: bool = False,
) -> Iterator[_Server]:
    """Run ``uvicorn --factory asgi_kit.bench.apps:create_app`` for ``app``; stop it on exit.

    ``gc_mode="freeze"`` has the server freeze its startup heap whatever the app does;
    ``diagnostics`` has each server process record its GC pauses and thread CPU times, read
    into ``server.diagnostics`` once the server has stopped.
    """
    if gc_mode not in GC_MODES:
        raise ValueError(f"gc_mode must be one of {', '.join(GC_MODES)}, got {gc_mode!r}")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "asgi_kit.bench.apps:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env = {**os.environ, APP_ENV: app, FREEZE_ENV: "1" if gc_mode == "freeze" else "0"}
    env.pop(DIAGNOSTICS_ENV, None)
    with ExitStack() as cleanup:
        if diagnostics:
            folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="asgi-kit-e2e-")))
            env[DIAGNOSTICS_ENV] = str(folder / "diagnostics")
        # The command is built here from sys.executable and constants: no untrusted input.
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
        server = _Server(app, workers, port, process, gc_mode)
        try:
            _wait_ready(server, token, time.monotonic() + startup_timeout)
            yield server
        finally:
            if process.poll() is None:
                server.peak_rss = max(server.peak_rss, peak_rss(process_tree(process.pid)))
            stop_process(process)
            if diagnostics:
                server.diagnostics = read_diagnostics(folder)


def read_diagnostics(folder: Path) -> list[dict[str, Any]]:
    """The documents the server processes wrote to ``folder`` at shutdown (one per process)."""
    found = []
    for path in sorted(folder.glob("diagnostics.*")):
        if path.suffix == ".tmp":
            continue
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


# --------------------------------------------------------------------------- load generators


def _http_request(port: int, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"GET {PATH}{QUERY} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _builtin_load(
    port: int, headers: Sequence[tuple[str, str]], seconds: float, connections: int, cap: int
) -> LoadResult:
    request = _http_request(port, headers)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at and len(latencies) < cap:
                began = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                await reader.readexactly(int(match.group(1)) if match else 0)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                latencies.append((time.perf_counter() - began) * 1000)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), seconds + 10.0)
    elapsed = time.perf_counter() - began
    latencies.sort()
    return _result(len(latencies), elapsed, latency_points(latencies), errors)


def latency_points(sorted_ms: Sequence[float]) -> dict[str, float]:
    """The latency at each of :data:`POINTS` (nearest rank) of sorted per-request latencies."""
    if not sorted_ms:
        return {}
    points = {point: _percentile(sorted_ms, float(point) / 100) for point in POINTS if point != "max"}
    return {**{k: v for k, v in points.items() if v is not None}, "max": sorted_ms[-1]}


def _result(requests: int, seconds: float, distribution: dict[str, float], errors: int) -> LoadResult:
    return LoadResult(
        requests,
        seconds,
        distribution.get("50"),
        distribution.get("99"),
        errors,
        distribution.get("99.9"),
        distribution,
    )


def builtin_load(
    port: int, headers: Sequence[tuple[str, str]], seconds: float, connections: int, cap: int
) -> LoadResult:
    """Keep ``connections`` keep-alive connections busy for ``seconds`` (at most ``cap`` requests)."""
    return asyncio.run(_builtin_load(port, headers, seconds, connections, cap))


def _to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(f"unparsable wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """Read requests, duration, latency percentiles and errors from ``wrk --latency`` output.

    The ``asgi-kit-latency <point> <microseconds>`` lines that :data:`WRK_SCRIPT` prints win
    over the ``--latency`` table (which has p50 and p99 only, rounded by wrk's formatting).
    """
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise ValueError("wrk output has no request count")
    seconds = _to_ms(total.group(2) + total.group(3)) / 1000
    percentiles = dict(
        re.findall(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.MULTILINE)
    )
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    distribution = {point: _to_ms(value) for point, value in percentiles.items() if point in POINTS}
    for point, micros in re.findall(r"^asgi-kit-latency (\S+) (\d+)\s*$", output, re.MULTILINE):
        if point in POINTS:
            distribution[point] = int(micros) / 1000
    return _result(int(total.group(1)), seconds, distribution, errors)


def wrk_load(port: int, headers: Sequence[tuple[str, str]], seconds: float, connections: int) -> LoadResult:
    """Run ``wrk`` (one thread, from its own process) against the server."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk is not installed")
    with tempfile.TemporaryDirectory(prefix="asgi-kit-wrk-") as folder:
        script = Path(folder) / "latency.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
        ]
        for name, value in headers:
            command += ["-H", f"{name}: {value}"]
        command.append(f"http://127.0.0.1:{port}{PATH}{QUERY}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)  # noqa: S603
    return parse_wrk(done.stdout)


# --------------------------------------------------------------------------- the run


def run_e2e(config: E2EConfig = E2EConfig(), progress: Progress | None = None) -> dict[str, Any]:
    """Serve every app in every mode, alternate the load between them, return the e2e document."""
    loader = config.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "builtin"
    token = mint_token(0)
    headers = request_headers(token)

    def load(port: int, seconds: float) -> LoadResult:
        if loader == "wrk":
            return wrk_load(port, headers, seconds, config.connections)
        return builtin_load(port, headers, seconds, config.connections, config.max_requests)

    rows: list[dict[str, Any]] = []
    total = len(config.workers) * len(config.gc_modes) * len(config.apps) * config.repeats
    done = 0
    for workers in config.workers:
        for gc_mode in config.gc_modes:
            with ExitStack() as stack:
                servers = [
                    stack.enter_context(
                        serve(
                            app,
                            workers,
                            token,
                            config.startup_timeout,
                            gc_mode=gc_mode,
                            diagnostics=config.diagnostics,
                        )
                    )
                    for app in config.apps
                ]
                if config.warmup > 0:
                    for server in servers:
                        load(server.port, config.warmup)
                for repeat in range(config.repeats):
                    shift = repeat % len(servers)
                    for server in servers[shift:] + servers[:shift]:
                        server.loads.append(load(server.port, config.duration))
                        done += 1
                        if progress is not None:
                            progress(done, total, f"{server.app} x{workers} gc={gc_mode}")
                for server in servers:
                    server.peak_rss = peak_rss(process_tree(server.process.pid))
            # The servers have stopped here: their diagnostics are written.
            rows.extend(_row(server) for server in servers)
    return {
        "loader": loader,
        "config": asdict(config),
        "duration_s": config.duration,
        "repeats": config.repeats,
        "connections": config.connections,
        "runs": rows,
        "targets": e2e_targets(rows),
    }


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _row(server: _Server) -> dict[str, Any]:
    row = {
        "app": server.app,
        "workers": server.workers,
        "gc": server.gc_mode,
        "rps": _median([load.rps for load in server.loads]),
        "p50_ms": _median([load.p50_ms for load in server.loads]),
        "p99_ms": _median([load.p99_ms for load in server.loads]),
        "p999_ms": _median([load.p999_ms for load in server.loads]),
        "errors": sum(load.errors for load in server.loads),
        "peak_rss_bytes": server.peak_rss,
        "samples": [{**asdict(load), "rps": load.rps} for load in server.loads],
    }
    if server.diagnostics:
        row["diagnostics"] = server.diagnostics
    return row


def _target(
    name: str, description: str, value: float | None, limit: float | None, higher_is_better: bool
) -> dict[str, Any]:
    passed = None
    if value is not None and limit is not None:
        passed = value >= limit if higher_is_better else value <= limit
    return {
        "name": name,
        "description": description,
        "kind": "e2e",
        "measured": value,
        "limit": limit,
        "passed": passed,
        "note": "" if value is not None else "not measured",
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def e2e_targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's end-to-end targets, for every worker count measured.

    They use the ``default`` GC mode's rows (each app as its users build it); a run of the
    ``freeze`` mode alone is judged on its rows, and the description says so.
    """
    modes = {row.get("gc", "default") for row in rows}
    mode = "default" if "default" in modes or not modes else "freeze"
    rows = [row for row in rows if row.get("gc", "default") == mode]
    out: list[dict[str, Any]] = []
    for workers in sorted({row["workers"] for row in rows}):
        by_app = {row["app"]: row for row in rows if row["workers"] == workers}
        bare, kit, peer = by_app.get("bare", {}), by_app.get("kit", {}), by_app.get("peer", {})
        suffix = f" ({workers} worker{'s' if workers > 1 else ''}{', every heap frozen' if mode == 'freeze' else ''})"
        primary = workers == 1
        out.append(
            _target(
                f"e2e_rps_kit_w{workers}",
                "kit stack keeps >= 0.5x bare FastAPI's requests/s" + suffix,
                _ratio(kit.get("rps"), bare.get("rps")),
                0.5 if primary else None,
                True,
            )
        )
        out.append(
            _target(
                f"e2e_rps_peer_w{workers}",
                "peer stack's share of bare FastAPI's requests/s (issue: ~0.1x)" + suffix,
                _ratio(peer.get("rps"), bare.get("rps")),
                None,
                True,
            )
        )
        out.append(
            _target(
                f"e2e_p99_kit_w{workers}",
                "kit stack p99 latency <= 2x bare FastAPI's" + suffix,
                _ratio(kit.get("p99_ms"), bare.get("p99_ms")),
                2.0 if primary else None,
                False,
            )
        )
        out.append(
            _target(
                f"e2e_p999_kit_w{workers}",
                "kit stack p99.9 latency <= 3x bare FastAPI's" + suffix,
                _ratio(kit.get("p999_ms"), bare.get("p999_ms")),
                3.0 if primary else None,
                False,
            )
        )
        kit_mem = _diff(kit.get("peak_rss_bytes"), bare.get("peak_rss_bytes"))
        peer_mem = _diff(peer.get("peak_rss_bytes"), bare.get("peak_rss_bytes"))
        out.append(
            _target(
                f"e2e_memory_w{workers}",
                "kit stack's peak-memory increase <= 0.75x the peer stack's" + suffix,
                _ratio(kit_mem, peer_mem),
                0.75 if primary else None,
                False,
            )
        )
    return out


def _diff(a: int | None, b: int | None) -> float | None:
    return float(a - b) if a and b else None


__all__ = [
    "GC_MODES",
    "POINTS",
    "QUICK_E2E",
    "WRK_SCRIPT",
    "E2EConfig",
    "LoadResult",
    "builtin_load",
    "e2e_targets",
    "latency_points",
    "parse_wrk",
    "peak_rss",
    "process_tree",
    "read_diagnostics",
    "run_e2e",
    "serve",
    "stop_process",
    "wrk_load",
]
