"""``metrics_app``: the ``/metrics`` endpoint, in the Prometheus text format or OpenMetrics.

Single process: serves the registry you give it (``metrics.registry``). Multiprocess (a
``multiprocess_dir``, or ``PROMETHEUS_MULTIPROC_DIR`` set when the app is built): serves a
fresh registry holding a ``MultiProcessCollector`` over that directory, which adds up every
worker's files. gunicorn tells the master when a worker exits (the ``child_exit`` hook calls
``mark_process_dead``); ``uvicorn --workers`` has no such hook, so before each collection the
app itself removes the live-gauge files of workers whose pid no longer exists. Counters and
histograms of dead workers stay, as they must: totals never go down.
"""

from __future__ import annotations

import asyncio
import os
import re
from gzip import compress as gzip_compress
from pathlib import Path
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from asgi_kit._asgi.headers import get_header
from asgi_kit._asgi.lifespan import answer_lifespan
from asgi_kit._asgi.options import check_instance
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus-client names live-gauge files ``gauge_live<mode>_<pid>.db``; only those are removed
# by ``mark_process_dead``, so only those are worth checking.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (a signal-0 probe; no permission still means alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_workers(directory: str | os.PathLike[str]) -> list[int]:
    """Mark every worker whose live-gauge files are in ``directory`` but whose pid is gone as dead.

    Returns the pids marked. Safe to run concurrently from several workers: a file another
    worker removed first is simply not there any more.
    """
    dead: set[int] = set()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        match = _LIVE_GAUGE_FILE.match(name)
        if match is not None:
            pid = int(match.group(1))
            if pid not in dead and pid != os.getpid() and not pid_alive(pid):
                dead.add(pid)
    for pid in sorted(dead):
        try:
            mark_process_dead(pid, os.fspath(directory))  # type: ignore[no-untyped-call]
        except FileNotFoundError:  # another worker swept it between our listdir and remove
            continue
    return sorted(dead)


class _Exposition:
    """The ASGI app :func:`metrics_app` returns."""

    __slots__ = ("_compress", "_multiprocess_dir", "_registry")

    def __init__(self, registry: CollectorRegistry, multiprocess_dir: str | None, compress: bool) -> None:
        self._registry = registry
        self._multiprocess_dir = multiprocess_dir
        self._compress = compress

    def __repr__(self) -> str:
        return f"metrics_app(multiprocess_dir={self._multiprocess_dir!r}, gzip={self._compress})"

    def render(
        self, accept: str, accept_encoding: str, names: list[str]
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The body and headers of one scrape (blocking: runs in a worker thread)."""
        if self._multiprocess_dir is not None:
            sweep_dead_workers(self._multiprocess_dir)
        encoder, content_type = choose_encoder(accept)
        registry = self._registry.restricted_registry(names) if names else self._registry
        body: bytes = encoder(registry)
        headers = [(b"content-type", content_type.encode("latin-1")), (b"vary", b"Accept, Accept-Encoding")]
        if self._compress and gzip_accepted(accept_encoding):
            body = gzip_compress(body)
            headers.append((b"content-encoding", b"gzip"))
        return body, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain")], b"")
            return
        raw_headers = scope["headers"]
        accept = (get_header(raw_headers, b"accept") or b"").decode("latin-1")
        accept_encoding = (get_header(raw_headers, b"accept-encoding") or b"").decode("latin-1")
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        # Collecting reads every series (and, multiprocess, every file): keep it off the event loop.
        body, headers = await asyncio.to_thread(self.render, accept, accept_encoding, query.get("name[]", []))
        headers.append((b"content-length", str(len(body)).encode()))
        await _respond(send, 200, headers, b"" if method == "HEAD" else body)


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def metrics_app(
    registry: CollectorRegistry | None = None,
    *,
    multiprocess_dir: str | os.PathLike[str] | None = None,
    gzip: bool = True,
) -> ASGIApp:
    """An ASGI app serving the metrics exposition for Prometheus to scrape.

    Mount it at ``/metrics`` beside your app (or pass ``path="/metrics"`` to
    ``MetricsMiddleware``), and exclude that path from the middleware. ``GET`` and ``HEAD``
    only; the format follows ``Accept`` exactly as prometheus-client's own servers choose it
    (``application/openmetrics-text`` gives OpenMetrics, otherwise the text format); the
    ``name[]`` query parameter restricts the output; gzip when the client accepts it.

    Args:
        registry: the registry to serve (``metrics.registry``). Ignored in multiprocess mode,
            which serves every worker's files instead.
        multiprocess_dir: the Prometheus multiprocess directory. ``None`` reads
            ``PROMETHEUS_MULTIPROC_DIR`` once, here; unset means single-process mode.
        gzip: whether to compress when the scraper sends ``Accept-Encoding: gzip``.

    Raises:
        ValueError: no registry in single-process mode, or the multiprocess directory is missing.
        TypeError: ``registry`` is not a ``CollectorRegistry``.
    """
    if registry is not None:
        check_instance("registry", registry, CollectorRegistry, "a prometheus_client CollectorRegistry")
    directory = os.fspath(multiprocess_dir) if multiprocess_dir is not None else os.environ.get(MULTIPROC_ENV)
    if directory:
        if not Path(directory).is_dir():
            raise ValueError(f"multiprocess_dir {directory!r} is not a directory")
        collected = CollectorRegistry()
        MultiProcessCollector(collected, path=directory)  # type: ignore[no-untyped-call]
        return _Exposition(collected, directory, gzip)
    if registry is None:
        raise ValueError(
            "metrics_app needs registry= (e.g. metrics.registry from register_metrics) "
            f"unless multiprocess mode is on ({MULTIPROC_ENV} or multiprocess_dir=)"
        )
    return _Exposition(registry, None, gzip)


__all__ = ["MULTIPROC_ENV", "metrics_app", "pid_alive", "sweep_dead_workers"]
