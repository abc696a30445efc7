"""One request whose client leaves mid-stream is a 499 in the access log, the metrics and the span alike."""

from __future__ import annotations

import threading

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit.logging import LoggingMiddleware
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import build_app
from tests.harness.servers import serve
from tests.logging.helpers import json_logger, records

pytestmark = pytest.mark.integration


class SpanEnded(SpanProcessor):
    """Lets the test wait, without sleeping, until the server thread has ended a span."""

    def __init__(self) -> None:
        self.ended = threading.Event()

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.set()


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
def test_client_gone_mid_stream_is_499_in_log_metric_and_span(
    framework: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The client reads the first event of a 200 stream and hangs up: all three layers say 499."""
    span_ended = SpanEnded()
    provider.add_span_processor(span_ended)
    metrics = register_metrics(f"gone-{framework}")
    with json_logger() as (logger, stream):
        # The kit's order: tracing outermost, then the access log, the metrics inside both.
        app = TracingMiddleware(
            LoggingMiddleware(
                MetricsMiddleware(build_app(framework), metrics=metrics, path="/metrics"),
                logger=logger,
                exclude_paths=["/metrics"],
            ),
            tracer_provider=provider,
            exclude_paths=["/metrics"],
        )
        with serve(app, "uvicorn") as served, httpx.Client(base_url=served.url, timeout=10) as client:
            with client.stream("GET", "/stream") as response:
                assert response.status_code == 200
                assert next(response.iter_raw()).startswith(b"data:")  # the first event, then hang up
            # Tracing ends its span last, after the access log and the metrics recorded theirs.
            assert span_ended.ended.wait(10), "the server never finished the request"
            exposition = client.get("/metrics").text

    (record,) = records(stream)
    (span,) = exporter.get_finished_spans()
    assert record["route"] == "/stream" and record["status"] == 499 and "error" not in record
    assert record["trace_id"] == f"{span.context.trace_id:032x}"  # the same request
    assert span.attributes is not None and span.attributes["http.route"] == "/stream"
    assert span.attributes["http.response.status_code"] == 499
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in span.attributes
    requests = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["route"] == "/stream"
    }
    assert requests == {"499": 1.0}
