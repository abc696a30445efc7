"""What the variants of one run share: a tracer provider, a log sink, JSON loggers, a database.

Tracing on every side uses one SDK ``TracerProvider`` sampling every request, with a
``BatchSpanProcessor`` feeding a no-op exporter. Log records are formatted as JSON by
python-json-logger (or the kit's ``new_logger``) and written to a sink that discards them,
so formatting is paid for and terminal I/O is not. The PostgreSQL variants share one pool
(:mod:`benchmarks.suite.database`) and one API key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from asgi_kit._asgi.types import ASGIApp
from benchmarks.suite._apps import SkipVariant, load
from benchmarks.suite.database import BenchDatabase, open_bench_database


class _NullStream:
    """A text stream that drops what it is given: logs are formatted, then discarded."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


class BenchContext:
    """What the variants of one run share: the tracer provider, the log sink, the database.

    The tracer provider, the API key and the database are created on first use (only when a
    variant needs them). :meth:`close` shuts the provider down; :meth:`aclose`, awaited on the
    loop the requests ran on, first runs the async clean-ups (the database pool, pending
    writes) in reverse order, then :meth:`close`.

    Args:
        database_url: the PostgreSQL of the ``*.postgres`` variants; ``None`` skips them.
    """

    def __init__(self, *, database_url: str | None = None) -> None:
        self.sink = _NullStream()
        self.database_url = database_url
        self._provider: Any = None
        self._api_key: str | None = None
        self._database: BenchDatabase | None = None
        self._database_skip: str | None = None
        self._cleanups = AsyncExitStack()
        self._query_counters: dict[int, Callable[[], int]] = {}

    def tracer_provider(self) -> Any:
        """The one SDK provider every tracing variant uses: always-on sampling, batch processor."""
        if self._provider is None:
            (provider_cls,) = load("opentelemetry.sdk.trace", "TracerProvider")
            (batch_cls,) = load("opentelemetry.sdk.trace.export", "BatchSpanProcessor")
            exporter_base, result = load("opentelemetry.sdk.trace.export", "SpanExporter", "SpanExportResult")
            (always_on,) = load("opentelemetry.sdk.trace.sampling", "ALWAYS_ON")

            class NoopExporter(exporter_base):  # type: ignore[misc,valid-type]
                def export(self, spans: Sequence[Any]) -> Any:
                    return result.SUCCESS

            provider = provider_cls(sampler=always_on, shutdown_on_exit=False)
            provider.add_span_processor(batch_cls(NoopExporter()))
            self._provider = provider
        return self._provider

    def json_logger(self, name: str) -> logging.Logger:
        """A python-json-logger logger writing to the sink, not propagating to the root logger."""
        (formatter_cls,) = json_formatter()
        logger = logging.getLogger(f"asgi_kit.bench.{name}")
        logger.handlers.clear()
        handler = logging.StreamHandler(self.sink)
        handler.setFormatter(formatter_cls("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        return logger

    def api_key(self) -> str:
        """The run's one API key (``sk_live_...``): every API-key store holds it, every request sends it."""
        if self._api_key is None:
            (generate,) = load("asgi_kit.auth", "generate_api_key")
            self._api_key = str(generate())
        return self._api_key

    async def database(self) -> BenchDatabase:
        """The shared PostgreSQL pool and stores, opened on first use on the running loop.

        Raises:
            SkipVariant: no database, or it is unreachable (decided once, for every variant).
        """
        if self._database_skip is not None:
            raise SkipVariant(self._database_skip)
        if self._database is None:
            try:
                database = await open_bench_database(self.database_url, self.api_key())
            except SkipVariant as exc:
                self._database_skip = str(exc)
                raise
            self.push_async_callback(database.pool.close)
            self._database = database
        return self._database

    @property
    def database_info(self) -> dict[str, str] | None:
        """The redacted URL and server version of the database used, for the result document."""
        if self._database is None:
            return None
        return {"url": self._database.url, "server_version": self._database.server_version}

    def count_store_queries(self, app: ASGIApp, counter: Callable[[], int]) -> None:
        """Report ``app``'s store queries per request: ``counter()`` is their running total."""
        self._query_counters[id(app)] = counter

    def store_query_counter(self, app: ASGIApp) -> Callable[[], int] | None:
        """The counter :meth:`count_store_queries` registered for ``app``, if any."""
        return self._query_counters.get(id(app))

    def push_async_callback(self, callback: Callable[[], Awaitable[Any]]) -> None:
        """Have :meth:`aclose` await ``callback()`` (last pushed, first run)."""
        self._cleanups.push_async_callback(callback)

    async def aclose(self) -> None:
        try:
            await self._cleanups.aclose()
        finally:
            self.close()

    def close(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None


def json_formatter() -> tuple[Any, ...]:
    try:
        return load("pythonjsonlogger.json", "JsonFormatter")
    except SkipVariant:
        return load("pythonjsonlogger.jsonlogger", "JsonFormatter")


__all__ = ["BenchContext", "json_formatter"]
