"""Build an OpenTelemetry ``TracerProvider`` for a service in one call.

``init_tracer`` is the start-up half of tracing: it makes the provider that
:class:`~asgi_kit.tracing.TracingMiddleware` (and the app's own code) creates spans with.
Spans go through a batch processor by default, so exporting happens on a background thread
and an exporter that refuses, hangs or is slow never slows or fails a request: at worst the
bounded queue fills and spans are dropped. ``shutdown()`` and ``force_flush()`` on the
provider it returns are bounded in time, also when the exporter hangs.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Final, Literal
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from asgi_kit._asgi.options import check_choice, check_instance, check_int, check_number, check_str

ExporterName = Literal["otlp", "console", "none"]
EXPORTERS: Final = ("otlp", "console", "none")
OTLP_TRACES_PATH: Final = "/v1/traces"

_log = logging.getLogger("asgi_kit.tracing")


class BoundedTracerProvider(TracerProvider):
    """A ``TracerProvider`` whose ``shutdown`` and ``force_flush`` return within a deadline.

    The SDK's batch processor waits on the exporter (its ``force_flush`` ignores the
    timeout), so a hung collector would hang the process at exit. Here both run on a daemon
    thread that we stop waiting for after ``shutdown_timeout`` seconds.
    """

    def __init__(self, *, shutdown_timeout: float, resource: Resource, sampler: ParentBased) -> None:
        super().__init__(resource=resource, sampler=sampler, shutdown_on_exit=False)
        self._shutdown_timeout = shutdown_timeout
        atexit.register(self.shutdown)

    @property
    def shutdown_timeout(self) -> float:
        return self._shutdown_timeout

    def shutdown(self) -> None:
        """Flush and shut the processors down, waiting at most ``shutdown_timeout`` seconds."""
        atexit.unregister(self.shutdown)
        if not _run_bounded(super().shutdown, self._shutdown_timeout, "shutdown"):
            _log.warning(
                "tracer provider shutdown did not finish in %.1fs; spans may be lost", self._shutdown_timeout
            )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export queued spans, waiting at most ``timeout_millis``; ``False`` when it timed out."""
        parent_flush = super().force_flush
        result: list[bool] = []

        def flush() -> None:
            result.append(parent_flush(timeout_millis))

        return _run_bounded(flush, timeout_millis / 1000, "force-flush") and all(result)


def _run_bounded(target: Callable[[], object], timeout: float, what: str) -> bool:
    thread = threading.Thread(target=target, name=f"asgi-kit-tracer-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def init_tracer(
    service_name: str,
    *,
    exporter: ExporterName | SpanExporter = "otlp",
    sample_ratio: float = 1.0,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str | bool | int | float] | None = None,
    export_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
    batch: bool = True,
    max_queue_size: int = 2048,
    schedule_delay: float = 5.0,
    set_global: bool = False,
) -> TracerProvider:
    """Make a tracer provider that samples, batches and exports the service's spans.

    Args:
        service_name: the ``service.name`` resource attribute.
        exporter: ``"otlp"`` (OTLP/HTTP protobuf), ``"console"`` (JSON on stdout), ``"none"``
            (spans are created, so trace ids reach logs and outbound calls, but not exported),
            or any ``SpanExporter``.
        sample_ratio: share of new traces to sample, 0.0-1.0. Requests that carry a
            ``traceparent`` follow their parent's decision (``ParentBased(TraceIdRatioBased)``).
        endpoint: OTLP/HTTP collector URL. A bare ``http://collector:4318`` gets
            ``/v1/traces`` appended; ``None`` uses ``OTEL_EXPORTER_OTLP_*`` or localhost:4318.
        headers: extra HTTP headers for the OTLP exporter (an API key, say).
        resource_attributes: more resource attributes (``deployment.environment.name`` ...).
        export_timeout: seconds one OTLP export may take, retries included.
        shutdown_timeout: seconds ``shutdown()`` waits for the last export before giving up.
        batch: export from a background thread (default). ``False`` exports each span inline
            with a ``SimpleSpanProcessor``: only for tests and debugging.
        max_queue_size: spans the batch processor holds before it drops new ones.
        schedule_delay: seconds between batch exports.
        set_global: also install the provider as OpenTelemetry's global one, so
            ``trace.get_tracer(...)`` in app code and ``TracingMiddleware()`` without a
            ``tracer_provider`` use it.

    Returns:
        The provider. Pass it to ``TracingMiddleware(app, tracer_provider=provider)`` and call
        ``provider.shutdown()`` at application shutdown (it also runs at interpreter exit).

    Raises:
        ValueError, TypeError: an option is invalid (the message names it).
    """
    check_str("service_name", service_name)
    check_number("sample_ratio", sample_ratio, minimum=0.0, maximum=1.0)
    check_number("export_timeout", export_timeout, exclusive_minimum=0)
    check_number("shutdown_timeout", shutdown_timeout, exclusive_minimum=0)
    check_number("schedule_delay", schedule_delay, exclusive_minimum=0)
    check_int("max_queue_size", max_queue_size, minimum=1)
    span_exporter = _make_exporter(exporter, service_name, endpoint, headers, export_timeout)

    resource = Resource.create({**(resource_attributes or {}), "service.name": service_name})
    provider = BoundedTracerProvider(
        shutdown_timeout=float(shutdown_timeout),
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(float(sample_ratio))),
    )
    if span_exporter is not None:
        if batch:
            provider.add_span_processor(
                BatchSpanProcessor(
                    span_exporter,
                    max_queue_size=max_queue_size,
                    max_export_batch_size=min(512, max_queue_size),
                    schedule_delay_millis=schedule_delay * 1000,
                    export_timeout_millis=export_timeout * 1000,
                )
            )
        else:
            provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def _make_exporter(
    exporter: ExporterName | SpanExporter,
    service_name: str,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    export_timeout: float,
) -> SpanExporter | None:
    if isinstance(exporter, SpanExporter):
        if endpoint is not None or headers is not None:
            raise ValueError("endpoint and headers only apply to exporter='otlp'")
        return exporter
    check_instance("exporter", exporter, str, "'otlp', 'console', 'none' or a SpanExporter")
    check_choice("exporter", exporter, EXPORTERS)
    if exporter != "otlp":
        if endpoint is not None or headers is not None:
            raise ValueError("endpoint and headers only apply to exporter='otlp'")
        if exporter == "console":
            # sys.stdout as it is now, not as it was when the SDK was imported
            return ConsoleSpanExporter(service_name=service_name, out=sys.stdout)
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=_traces_endpoint(endpoint) if endpoint is not None else None,
        headers=dict(headers) if headers else None,
        timeout=float(export_timeout),
    )


def _traces_endpoint(endpoint: str) -> str:
    parts = urlsplit(check_str("endpoint", endpoint))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + OTLP_TRACES_PATH
    return endpoint


__all__ = ["EXPORTERS", "BoundedTracerProvider", "ExporterName", "init_tracer"]
