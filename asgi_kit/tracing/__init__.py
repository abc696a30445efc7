"""OpenTelemetry tracing: ``init_tracer``, ``TracingMiddleware`` and a W3C trace-context parser.

Needs the ``tracing`` extra (``pip install 'asgi-kit[tracing]'``).
"""

from __future__ import annotations

from asgi_kit._asgi.optional import require

require("opentelemetry.sdk.trace", "tracing")

from asgi_kit._asgi.context import TraceIds, get_trace_ids
from asgi_kit.tracing.middleware import TracingMiddleware
from asgi_kit.tracing.propagation import (
    TraceContext,
    TraceParent,
    extract,
    format_traceparent,
    format_tracestate,
    parse_traceparent,
    parse_tracestate,
)
from asgi_kit.tracing.tracer import init_tracer

__all__ = [
    "TraceContext",
    "TraceIds",
    "TraceParent",
    "TracingMiddleware",
    "extract",
    "format_traceparent",
    "format_tracestate",
    "get_trace_ids",
    "init_tracer",
    "parse_traceparent",
    "parse_tracestate",
]
