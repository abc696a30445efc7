"""End-to-end runs: each app under its own uvicorn, loaded from another process, alternated.

Each :class:`ServedApp` runs in its own uvicorn (``--workers N`` for each worker count),
started once per GC mode. The load comes from another process: ``wrk`` when it is on the
``PATH``, otherwise a bounded built-in asyncio HTTP/1.1 keep-alive load generator running in
this process. Runs are alternated (the order rotates every repeat), so drift lands on every
app alike.

GC modes (``gc_modes``): ``default`` serves each app as built; ``freeze`` has every server
``gc.freeze()`` its startup heap alike (:mod:`asgi_kit.bench.serving`). Each run reports
requests/s and latency p50/p99/p99.9 (wrk through a small Lua ``done()`` hook, since
``--latency`` stops at p99; the built-in loader from every request's latency); peak memory
is the sum of ``VmHWM`` (Linux) over the server's process tree, or the largest RSS psutil saw
elsewhere. Every process is started in its own session and stopped by PID, with bounded
waits; a server's stderr goes to a file whose end is shown when it fails to start.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from asgi_kit.bench.request import BenchRequest
from asgi_kit.bench.serving import DIAGNOSTICS_ENV, FACTORY_ENV, FREEZE_ENV

Progress = Callable[[int, int, str], None]
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
class ServedApp:
    """An app the e2e runner serves: ``factory`` (``module:callable``) builds it in the server.

    ``env`` is added to the server's environment, ``path`` to its ``PYTHONPATH`` (the folders
    ``factory`` is imported from).
    """

    name: str
    factory: str
    env: Mapping[str, str] = field(default_factory=dict)
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class E2EConfig:
    """How long to load each app, with what, and in which modes."""

    workers: tuple[int, ...] = (1,)
    duration: float = 8.0
    warmup: float = 2.0
    repeats: int = 3
    connections: int = 32
    loader: str = "auto"
    startup_timeout: float = 30.0
    max_requests: int = 1_000_000
    #: ``default``: each app as built; ``freeze``: every server gc.freeze()s its startup heap
    gc_modes: tuple[str, ...] = ("default",)
    #: record GC pauses and thread CPU time in every server (asgi_kit.bench.serving.Diagnostics)
    diagnostics: bool = False

    def __post_init__(self) -> None:
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
    stderr: IO[bytes] | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _wait_ready(server: _Server, request: BenchRequest, expect_status: int, deadline: float) -> None:
    payload = request.http_bytes(server.port)
    expected = f"HTTP/1.1 {expect_status}".encode()
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"uvicorn for {server.app!r} exited with {server.process.returncode}{_stderr_tail(server.stderr)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as sock:
                sock.sendall(payload)
                head = sock.recv(64)
            if head.startswith(expected):
                return
            raise RuntimeError(
                f"{server.app!r} answered {head[:40]!r} to {request} instead of {expect_status}"
            )
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"uvicorn for {server.app!r} did not get ready in time{_stderr_tail(server.stderr)}")


def _stderr_tail(stream: IO[bytes] | None, size: int = 2000) -> str:
    """The end of what a server wrote to stderr, to say why it failed."""
    if stream is None:
        return ""
    stream.flush()
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - size))
    text = stream.read().decode("utf-8", "replace").strip()
    return f"; its stderr ends with:\n{text}" if text else ""


@contextmanager
def serve(
    app: ServedApp,
    workers: int,
    request: BenchRequest,
    startup_timeout: float = 30.0,
    *,
    gc_mode: str = "default",
    diagnostics: bool = False,
    expect_status: int = 200,
) -> Iterator[_Server]:
    """Run ``uvicorn --factory asgi_kit.bench.serving:create_app`` for ``app``; stop it on exit.

    The server is ready once it answers ``request`` with ``expect_status``.
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
        "asgi_kit.bench.serving:create_app",
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
    env = {
        **os.environ,
        **app.env,
        FACTORY_ENV: app.factory,
        FREEZE_ENV: "1" if gc_mode == "freeze" else "0",
    }
    if app.path:
        env["PYTHONPATH"] = os.pathsep.join([*app.path, *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop(DIAGNOSTICS_ENV, None)
    with ExitStack() as cleanup:
        if diagnostics:
            folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="asgi-kit-e2e-")))
            env[DIAGNOSTICS_ENV] = str(folder / "diagnostics")
        stderr = cleanup.enter_context(tempfile.TemporaryFile(prefix="asgi-kit-e2e-stderr-"))
        # The command is built here from sys.executable and constants: no untrusted input.
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        server = _Server(app.name, workers, port, process, gc_mode, stderr=stderr)
        try:
            _wait_ready(server, request, expect_status, time.monotonic() + startup_timeout)
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


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _builtin_load(
    port: int, request: BenchRequest, seconds: float, connections: int, cap: int, expect_status: int
) -> LoadResult:
    payload = request.http_bytes(port)
    expected = f"HTTP/1.1 {expect_status}".encode()
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at and len(latencies) < cap:
                began = time.perf_counter()
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                await _read_body(reader, head)
                if not head.startswith(expected):
                    errors += 1
                latencies.append((time.perf_counter() - began) * 1000)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), seconds + 10.0)
    elapsed = time.perf_counter() - began
    latencies.sort()
    return _result(len(latencies), elapsed, latency_points(latencies), errors)


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    """Read the body after ``head``: ``Content-Length`` bytes, or chunks (an app that sent no length)."""
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if length is not None:
        await reader.readexactly(int(length.group(1)))
        return
    if re.search(rb"(?i)\r\ntransfer-encoding:[^\r]*chunked", head) is None:
        return
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF; the last chunk has no trailers here
        if size == 0:
            return


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
    port: int,
    request: BenchRequest,
    seconds: float,
    connections: int,
    cap: int,
    expect_status: int = 200,
) -> LoadResult:
    """Keep ``connections`` keep-alive connections busy for ``seconds`` (at most ``cap`` requests).

    An answer other than ``expect_status`` counts as an error.
    """
    return asyncio.run(_builtin_load(port, request, seconds, connections, cap, expect_status))


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


def wrk_script(request: BenchRequest) -> str:
    """The Lua script wrk runs: the request's method and body, then the latency hook."""
    lines = [f'wrk.method = "{request.method}"']
    if request.body:
        # Decimal escapes: any byte, and nothing in the body can end the Lua string.
        lines.append('wrk.body = "' + "".join(f"\\{byte}" for byte in request.body) + '"')
    return "\n".join([*lines, WRK_SCRIPT])


def wrk_load(port: int, request: BenchRequest, seconds: float, connections: int) -> LoadResult:
    """Run ``wrk`` (one thread, from its own process) against the server.

    wrk counts answers outside 2xx and 3xx as errors.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk is not installed")
    with tempfile.TemporaryDirectory(prefix="asgi-kit-wrk-") as folder:
        script = Path(folder) / "latency.lua"
        script.write_text(wrk_script(request), encoding="utf-8")
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
        ]
        for name, value in request.headers:
            if name == b"content-length":  # wrk writes its own from wrk.body, and refuses a second
                continue
            command += ["-H", f"{name.decode('latin-1')}: {value.decode('latin-1')}"]
        command.append(f"http://127.0.0.1:{port}{request.target}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}")
    return parse_wrk(done.stdout)


# --------------------------------------------------------------------------- the run


def run_e2e(
    apps: Sequence[ServedApp],
    request: BenchRequest,
    config: E2EConfig = E2EConfig(),
    progress: Progress | None = None,
    *,
    expect_status: int = 200,
) -> dict[str, Any]:
    """Serve every app in every mode, alternate the load between them, return the e2e document.

    Every request is ``request``; every answer must be ``expect_status`` (others count as errors).
    """
    if not apps:
        raise ValueError("run_e2e needs at least one app")
    loader = config.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") and 200 <= expect_status < 400 else "builtin"

    def load(port: int, seconds: float) -> LoadResult:
        if loader == "wrk":
            return wrk_load(port, request, seconds, config.connections)
        return builtin_load(port, request, seconds, config.connections, config.max_requests, expect_status)

    rows: list[dict[str, Any]] = []
    total = len(config.workers) * len(config.gc_modes) * len(apps) * config.repeats
    done = 0
    for workers in config.workers:
        for gc_mode in config.gc_modes:
            with ExitStack() as stack:
                servers = [
                    stack.enter_context(
                        serve(
                            app,
                            workers,
                            request,
                            config.startup_timeout,
                            gc_mode=gc_mode,
                            diagnostics=config.diagnostics,
                            expect_status=expect_status,
                        )
                    )
                    for app in apps
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
        "request": request.describe(),
        "duration_s": config.duration,
        "repeats": config.repeats,
        "connections": config.connections,
        "runs": rows,
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


__all__ = [
    "GC_MODES",
    "POINTS",
    "QUICK_E2E",
    "WRK_SCRIPT",
    "E2EConfig",
    "LoadResult",
    "Progress",
    "ServedApp",
    "builtin_load",
    "latency_points",
    "parse_wrk",
    "peak_rss",
    "process_tree",
    "read_diagnostics",
    "run_e2e",
    "serve",
    "stop_process",
    "wrk_load",
    "wrk_script",
]
