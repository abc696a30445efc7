"""init_tracer: options, exporters, sampling, and exporters that fail never hurting requests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.testing import call_app
from asgi_kit.tracing import TracingMiddleware, init_tracer
from asgi_kit.tracing.tracer import BoundedTracerProvider, _traces_endpoint
from tests.harness.servers import free_port


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    scope["asgi_kit.route"] = "/ok"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class HangingExporter(SpanExporter):
    """Blocks every export until released (a collector that accepts and never answers)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.wait(30)


class RaisingExporter(SpanExporter):
    """Raises on every export (a broken exporter)."""

    def __init__(self) -> None:
        self.calls = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls.set()
        raise ConnectionRefusedError("collector down")


def test_returns_batching_provider_with_service_name() -> None:
    """The provider carries service.name and other resource attributes, and batches by default."""
    exporter = InMemorySpanExporter()
    provider = init_tracer(
        "orders",
        exporter=exporter,
        resource_attributes={"deployment.environment.name": "test"},
        schedule_delay=0.05,
    )
    try:
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "orders"
        assert provider.resource.attributes["deployment.environment.name"] == "test"
        with provider.get_tracer("t").start_as_current_span("s", kind=SpanKind.SERVER):
            pass
        assert exporter.get_finished_spans() == ()  # batched, not exported inline
        assert provider.force_flush(5000)
        assert [s.name for s in exporter.get_finished_spans()] == ["s"]
    finally:
        provider.shutdown()


def test_sampler_is_parent_based_ratio() -> None:
    """The sampler is ParentBased(TraceIdRatioBased(sample_ratio))."""
    provider = init_tracer("svc", exporter="none", sample_ratio=0.25)
    try:
        description = provider.sampler.get_description()
        assert description.startswith("ParentBased{root:TraceIdRatioBased{0.25}")
    finally:
        provider.shutdown()


async def test_zero_ratio_follows_sampled_parent() -> None:
    """sample_ratio=0 drops new traces but continues a sampled incoming trace."""
    exporter = InMemorySpanExporter()
    provider = init_tracer("svc", exporter=exporter, sample_ratio=0.0, batch=False)
    try:
        layer = TracingMiddleware(ok_app, tracer_provider=provider)
        await call_app(layer, path="/ok")
        assert exporter.get_finished_spans() == ()
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        await call_app(layer, path="/ok", headers=[("traceparent", parent)])
        assert [s.name for s in exporter.get_finished_spans()] == ["GET /ok"]
    finally:
        provider.shutdown()


def test_console_exporter_writes_json(capsys: pytest.CaptureFixture[str]) -> None:
    """exporter='console' prints each span as JSON on stdout."""
    provider = init_tracer("svc", exporter="console", batch=False)
    try:
        with provider.get_tracer("t").start_as_current_span("printed"):
            pass
    finally:
        provider.shutdown()
    assert '"name": "printed"' in capsys.readouterr().out


def test_none_exporter_still_records() -> None:
    """exporter='none' still creates sampled, recording spans (ids for logs), exported nowhere."""
    provider = init_tracer("svc", exporter="none")
    try:
        with provider.get_tracer("t").start_as_current_span("s") as span:
            assert span.is_recording() and span.get_span_context().trace_flags.sampled
    finally:
        provider.shutdown()


async def test_hanging_exporter_never_slows_requests_and_shutdown_is_bounded() -> None:
    """With an exporter that hangs, requests stay fast and shutdown returns within its timeout."""
    exporter = HangingExporter()
    provider = init_tracer(
        "svc", exporter=exporter, schedule_delay=0.01, shutdown_timeout=0.5, max_queue_size=64
    )
    try:
        layer = TracingMiddleware(ok_app, tracer_provider=provider)
        await call_app(layer, path="/ok")
        assert exporter.entered.wait(10), "the exporter was never called"
        start = time.perf_counter()
        for _ in range(500):  # more than the queue holds: spans are dropped, requests are not
            send = await call_app(layer, path="/ok")
            assert send.status == 200
        assert time.perf_counter() - start < 10  # generous: ~a few ms normally, 500 x 30s if blocked
        start = time.perf_counter()
        provider.shutdown()
        assert time.perf_counter() - start < 5
        start = time.perf_counter()
        provider.force_flush(200)  # after shutdown: returns at once, whatever the exporter does
        assert time.perf_counter() - start < 5
    finally:
        exporter.release.set()


async def test_raising_exporter_never_fails_requests() -> None:
    """An exporter that raises is contained by the batch processor; requests succeed."""
    exporter = RaisingExporter()
    provider = init_tracer("svc", exporter=exporter, schedule_delay=0.01)
    try:
        layer = TracingMiddleware(ok_app, tracer_provider=provider)
        for _ in range(20):
            assert (await call_app(layer, path="/ok")).status == 200
        assert exporter.calls.wait(10)
    finally:
        provider.shutdown()


async def test_refused_otlp_endpoint_never_fails_requests() -> None:
    """The real OTLP exporter pointed at a closed port: requests succeed and shutdown is bounded."""
    provider = init_tracer(
        "svc",
        endpoint=f"http://127.0.0.1:{free_port()}",
        export_timeout=0.5,
        shutdown_timeout=2,
        schedule_delay=0.01,
    )
    layer = TracingMiddleware(ok_app, tracer_provider=provider)
    start = time.perf_counter()
    for _ in range(50):
        assert (await call_app(layer, path="/ok")).status == 200
    assert time.perf_counter() - start < 5
    start = time.perf_counter()
    provider.shutdown()
    assert time.perf_counter() - start < 6


def test_force_flush_timeout_is_bounded() -> None:
    """force_flush on a hung exporter returns False after its timeout instead of blocking."""
    exporter = HangingExporter()
    provider = init_tracer("svc", exporter=exporter, shutdown_timeout=0.2, schedule_delay=60)
    try:
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
        start = time.perf_counter()
        assert provider.force_flush(300) is False
        assert time.perf_counter() - start < 5
        assert isinstance(provider, BoundedTracerProvider) and provider.shutdown_timeout == 0.2
    finally:
        exporter.release.set()
        provider.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://c.example/otlp/v1/traces", "https://c.example/otlp/v1/traces"),
    ],
)
def test_traces_endpoint(endpoint: str, expected: str) -> None:
    """A bare collector URL gets /v1/traces; a URL with a path is used as given."""
    assert _traces_endpoint(endpoint) == expected


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"service_name": ""}, ValueError, "service_name"),
        ({"exporter": "zipkin"}, ValueError, "exporter"),
        ({"exporter": 3}, TypeError, "exporter"),
        ({"sample_ratio": 1.5}, ValueError, "sample_ratio"),
        ({"sample_ratio": -0.1}, ValueError, "sample_ratio"),
        ({"sample_ratio": "1"}, TypeError, "sample_ratio"),
        ({"sample_ratio": True}, TypeError, "sample_ratio"),
        ({"export_timeout": 0}, ValueError, "export_timeout"),
        ({"shutdown_timeout": -1}, ValueError, "shutdown_timeout"),
        ({"schedule_delay": "1"}, TypeError, "schedule_delay"),
        ({"max_queue_size": 1.5}, TypeError, "max_queue_size"),
        ({"max_queue_size": 0}, ValueError, "max_queue_size"),
        ({"endpoint": "collector:4318"}, ValueError, "endpoint"),
        ({"endpoint": 4318}, TypeError, "endpoint"),
        ({"exporter": "console", "endpoint": "http://c:4318"}, ValueError, "endpoint"),
        ({"exporter": InMemorySpanExporter(), "headers": {"a": "b"}}, ValueError, "endpoint and headers"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], match: str) -> None:
    """Bad options raise at once with an error naming the option."""
    kwargs: dict[str, Any] = {"service_name": "svc", **options}
    with pytest.raises(error, match=match):
        init_tracer(kwargs.pop("service_name"), **kwargs)


SET_GLOBAL_SCRIPT = """
from opentelemetry import trace
from asgi_kit.tracing import init_tracer
provider = init_tracer("svc", exporter="none", set_global=True)
print(trace.get_tracer_provider() is provider)
"""


def test_set_global_installs_provider() -> None:
    """set_global=True makes the provider OpenTelemetry's global one."""
    result = subprocess.run(
        [sys.executable, "-c", SET_GLOBAL_SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_import_error_names_the_extra() -> None:
    """Importing asgi_kit.tracing without opentelemetry names the pip install to run."""
    script = (
        "import sys; sys.modules['opentelemetry.sdk.trace'] = None\n"
        "try:\n    import asgi_kit.tracing\nexcept ImportError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert "pip install 'asgi-kit[tracing]'" in result.stdout
