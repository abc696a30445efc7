"""End-to-end mode: uvicorn subprocesses serving bare FastAPI, the kit stack and the peer stack.

Each app runs in its own uvicorn (one worker, then ``--workers 2``), started once per mode.
The load comes from another process: ``wrk`` when it is installed, otherwise a bounded
built-in asyncio HTTP/1.1 keep-alive load generator running in this process. Runs are
alternated A/B/C (the order rotates every repeat), so drift lands on every app alike. Each
run reports requests/s and latency p50/p99; peak memory is the sum of ``VmHWM`` (Linux) over
the server's process tree, or the largest RSS psutil saw elsewhere. Every process is started
in its own session and stopped by PID, with bounded waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from asgi_kit.bench._apps import BASE_HEADERS, PATH, mint_token
from asgi_kit.bench.apps import APP_ENV, E2E_APPS, FREEZE_ENV

Progress = Callable[[int, int, str], None]
QUERY: Final = "?verbose=1"
_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


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
    #: gc.freeze() the startup heap in every server (all apps alike); see asgi_kit.bench.apps
    freeze_heap: bool = True

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


QUICK_E2E: Final = E2EConfig(workers=(1,), duration=1.0, warmup=0.5, repeats=1, connections=8)


@dataclass(slots=True)
class LoadResult:
    """One load run against one server."""

    requests: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class _Server:
    app: str
    workers: int
    port: int
    process: subprocess.Popen[bytes]
    loads: list[LoadResult] = field(default_factory=list)
    peak_rss: int = 0


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
    app: str, workers: int, token: str, startup_timeout: float = 30.0, *, freeze_heap: bool = True
) -> Iterator[_Server]:
    """Run ``uvicorn --factory asgi_kit.bench.apps:create_app`` for ``app``; stop it on exit."""
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
    env = {**os.environ, APP_ENV: app, FREEZE_ENV: "1" if freeze_heap else "0"}
    # The command is built here from sys.executable and constants: no untrusted input.
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
    server = _Server(app, workers, port, process)
    try:
        _wait_ready(server, token, time.monotonic() + startup_timeout)
        yield server
    finally:
        if process.poll() is None:
            server.peak_rss = max(server.peak_rss, peak_rss(process_tree(process.pid)))
        stop_process(process)


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
    return LoadResult(
        len(latencies), elapsed, _percentile(latencies, 0.5), _percentile(latencies, 0.99), errors
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
    """Read requests, duration, p50/p99 and errors from ``wrk --latency`` output."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise ValueError("wrk output has no request count")
    seconds = _to_ms(total.group(2) + total.group(3)) / 1000
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return LoadResult(
        int(total.group(1)),
        seconds,
        _to_ms(percentiles["50"]) if "50" in percentiles else None,
        _to_ms(percentiles["99"]) if "99" in percentiles else None,
        errors,
    )


def wrk_load(port: int, headers: Sequence[tuple[str, str]], seconds: float, connections: int) -> LoadResult:
    """Run ``wrk`` (one thread, from its own process) against the server."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk is not installed")
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
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
    total = len(config.workers) * len(config.apps) * config.repeats
    done = 0
    for workers in config.workers:
        with ExitStack() as stack:
            servers = [
                stack.enter_context(
                    serve(app, workers, token, config.startup_timeout, freeze_heap=config.freeze_heap)
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
                        progress(done, total, f"{server.app} x{workers}")
            for server in servers:
                server.peak_rss = peak_rss(process_tree(server.process.pid))
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
    return {
        "app": server.app,
        "workers": server.workers,
        "rps": _median([load.rps for load in server.loads]),
        "p50_ms": _median([load.p50_ms for load in server.loads]),
        "p99_ms": _median([load.p99_ms for load in server.loads]),
        "errors": sum(load.errors for load in server.loads),
        "peak_rss_bytes": server.peak_rss,
        "samples": [{**asdict(load), "rps": load.rps} for load in server.loads],
    }


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
    """The issue's end-to-end targets, for every worker count measured."""
    out: list[dict[str, Any]] = []
    for workers in sorted({row["workers"] for row in rows}):
        by_app = {row["app"]: row for row in rows if row["workers"] == workers}
        bare, kit, peer = by_app.get("bare", {}), by_app.get("kit", {}), by_app.get("peer", {})
        suffix = f" ({workers} worker{'s' if workers > 1 else ''})"
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
    "QUICK_E2E",
    "E2EConfig",
    "LoadResult",
    "builtin_load",
    "e2e_targets",
    "parse_wrk",
    "peak_rss",
    "process_tree",
    "run_e2e",
    "serve",
    "stop_process",
    "wrk_load",
]
