"""What the variants of one run share: one tracer provider, one log sink, JSON loggers.

Tracing on every side uses one SDK ``TracerProvider`` sampling every request, with a
``BatchSpanProcessor`` feeding a no-op exporter. Log records are formatted as JSON by
python-json-logger (or the kit's ``new_logger``) and written to a sink that discards them,
so formatting is paid for and terminal I/O is not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from asgi_kit.bench._apps import SkipVariant, load


class _NullStream:
    """A text stream that drops what it is given: logs are formatted, then discarded."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


class BenchContext:
    """What the variants of one run share: the tracer provider and the log sink.

    The tracer provider is created on first use (only when a tracing variant runs) and shut
    down by :meth:`close`.
    """

    def __init__(self) -> None:
        self.sink = _NullStream()
        self._provider: Any = None

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
