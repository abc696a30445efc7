"""Prometheus metrics for HTTP servers: ``register_metrics``, ``MetricsMiddleware``, ``metrics_app``.

Needs the ``metrics`` extra (prometheus-client)::

    metrics = register_metrics("orders")                 # a fresh registry, never the global one
    app = MetricsMiddleware(app, metrics=metrics, exclude_paths=["/metrics"])
    scrape = metrics_app(metrics.registry)               # mount at /metrics
"""

from asgi_kit._asgi.optional import require

require("prometheus_client", "metrics")

from asgi_kit.metrics.exposition import metrics_app, sweep_dead_workers
from asgi_kit.metrics.metrics import (
    DEFAULT_DURATION_BUCKETS,
    OTHER_METHOD,
    OVERFLOW_ROUTE,
    HTTPMetrics,
    register_metrics,
)
from asgi_kit.metrics.middleware import MetricsMiddleware

__all__ = [
    "DEFAULT_DURATION_BUCKETS",
    "OTHER_METHOD",
    "OVERFLOW_ROUTE",
    "HTTPMetrics",
    "MetricsMiddleware",
    "metrics_app",
    "register_metrics",
    "sweep_dead_workers",
]
