"""The HTTP server metrics and the one function that registers them: :func:`register_metrics`.

Every metric lives on a registry you pass in (or a fresh one), never on prometheus-client's
global default registry, so two apps in one process never clash and tests start clean.

A request costs one dict lookup and one update of its series: prometheus-client's
``labels()`` costs more than everything else a request does here, so each
``(method, route, status)`` resolves to its series once and is cached on the
:class:`HTTPMetrics` object. In one process a series is a few plain numbers behind one lock
(:mod:`asgi_kit.metrics.collector`); in multiprocess mode it holds prometheus-client's
labelled children, which write to the mmap files the exposition adds up.

The cache is bounded because every label is: unknown methods collapse to
:data:`OTHER_METHOD`, unmatched paths to :data:`~asgi_kit._asgi.routes.UNMATCHED_ROUTE`,
statuses outside 100-599 to :data:`OTHER_STATUS`, and past ``max_label_sets`` distinct label
sets new ones go to the route :data:`OVERFLOW_ROUTE` (the same guard, and the same default
limit of 2000, as the OpenTelemetry metrics SDK's cardinality limit).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as _values

from asgi_kit._asgi.options import check_instance, check_int, check_number, check_str, check_strings
from asgi_kit.metrics.collector import HTTPCollector, LocalSeries

#: OpenTelemetry's advisory bucket boundaries for ``http.server.request.duration`` (seconds).
DEFAULT_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.0,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
#: The methods kept as they are (RFC 9110 plus PATCH, as in OpenTelemetry's semantic conventions).
KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
OTHER_METHOD: Final = "_OTHER"
OTHER_STATUS: Final = "_OTHER"
OVERFLOW_ROUTE: Final = "<overflow>"
DEFAULT_MAX_LABEL_SETS: Final = 2000
LABEL_NAMES: Final = ("method", "route", "status")


def method_label(method: object, known: frozenset[str] = KNOWN_METHODS) -> str:
    """The ``method`` label value: the method itself when known, otherwise :data:`OTHER_METHOD`."""
    return method if isinstance(method, str) and method in known else OTHER_METHOD


def status_label(status: object) -> str:
    """The ``status`` label value: the three-digit code, or :data:`OTHER_STATUS` when not one."""
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return str(int(status))
    return OTHER_STATUS


class _ClientSeries:
    """One label set recorded through prometheus-client's metric objects (multiprocess mode)."""

    __slots__ = ("_duration", "_requests", "_size")

    def __init__(self, requests: Any, duration: Any, size: Any) -> None:
        self._requests = requests
        self._duration = duration
        self._size = size

    def record(self, duration: float, size: int) -> None:
        self._requests.inc()
        self._duration.observe(duration)
        self._size.inc(size)


class HTTPMetrics:
    """The HTTP server metrics of one service, registered on one registry.

    Exposes ``http_requests_total``, ``http_request_duration_seconds`` (histogram),
    ``http_response_size_bytes_total`` (counter of body bytes), each labelled ``method``,
    ``route``, ``status`` (and the constant service label), and the ``http_requests_in_flight``
    gauge. Read them through :attr:`registry` (``metrics_app``, ``get_sample_value``).

    In one process the numbers live in a :class:`~asgi_kit.metrics.collector.HTTPCollector`
    (one lock per request); with ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus-client was
    imported, they go through prometheus-client's own metric objects into its mmap files.

    Build it with :func:`register_metrics`; :class:`~asgi_kit.metrics.MetricsMiddleware` calls
    :meth:`request_started`, :meth:`request_finished` and :meth:`observe` for every request.

    Attributes:
        service_name: the service the metrics describe.
        registry: the registry the metrics were registered on.
        multiprocess: whether values are written to the multiprocess directory.
    """

    __slots__ = (
        "_bounds",
        "_by_labels",
        "_cache",
        "_const",
        "_in_flight",
        "_in_flight_gauge",
        "_lock",
        "_max_label_sets",
        "_methods",
        "_metric_objects",
        "multiprocess",
        "registry",
        "service_name",
    )

    def __init__(
        self,
        service_name: str,
        registry: CollectorRegistry,
        *,
        namespace: str,
        service_label: str | None,
        buckets: Sequence[float],
        extra_methods: Iterable[str],
        max_label_sets: int,
    ) -> None:
        self.service_name = service_name
        self.registry = registry
        # prometheus-client picks its value class once, at import, from PROMETHEUS_MULTIPROC_DIR;
        # ask it rather than reading the environment a second time.
        self.multiprocess: bool = _values.ValueClass is not _values.MutexValue
        # The service is one more label whose value never changes (prometheus-client has no
        # constant labels), baked into each cached series so it costs nothing per request.
        self._const: tuple[str, ...] = (service_name,) if service_label else ()
        const_names = (service_label,) if service_label else ()
        bounds = tuple(float(b) for b in buckets)
        self._bounds = bounds if bounds[-1] == math.inf else (*bounds, math.inf)
        self._methods = KNOWN_METHODS | frozenset(extra_methods)
        self._max_label_sets = max_label_sets
        self._lock = threading.Lock()
        # (method, route, raw status) -> series; several keys may share a series (statuses
        # that collapse to _OTHER), so series are owned by their label values.
        self._cache: dict[tuple[str, str, object], LocalSeries | _ClientSeries] = {}
        self._by_labels: dict[tuple[str, ...], Any] = {}
        # deque append/pop are atomic: the in-flight count needs no lock of its own.
        self._in_flight: deque[None] = deque()
        self._in_flight_gauge: Any = None
        self._metric_objects: tuple[Any, Any, Any] | None = None
        prefix = f"{namespace}_" if namespace else ""
        names = (*LABEL_NAMES, *const_names)
        if self.multiprocess:
            self._register_client_metrics(registry, namespace, names, const_names)
        else:
            registry.register(
                HTTPCollector(
                    prefix=prefix,
                    label_names=names,
                    const_names=const_names,
                    const_values=self._const,
                    bounds=self._bounds,
                    series=self._by_labels,
                    in_flight=self._in_flight,
                    lock=self._lock,
                )
            )

    def _register_client_metrics(
        self,
        registry: CollectorRegistry,
        namespace: str,
        names: tuple[str, ...],
        const_names: tuple[str, ...],
    ) -> None:
        common: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self._metric_objects = (
            Counter("http_requests_total", "HTTP requests served.", names, **common),
            Histogram(
                "http_request_duration_seconds",
                "Time to serve an HTTP request, in seconds.",
                names,
                buckets=self._bounds,
                **common,
            ),
            Counter("http_response_size_bytes", "HTTP response body bytes sent.", names, **common),
        )
        gauge = Gauge(
            "http_requests_in_flight",
            "HTTP requests being served.",
            const_names,
            multiprocess_mode="livesum",
            **common,
        )
        self._in_flight_gauge = gauge.labels(*self._const) if self._const else gauge

    def __repr__(self) -> str:
        return (
            f"HTTPMetrics(service_name={self.service_name!r}, series={len(self._by_labels)}, "
            f"multiprocess={self.multiprocess})"
        )

    def request_started(self) -> None:
        """Count one more request in flight; pair every call with :meth:`request_finished`."""
        if self._in_flight_gauge is None:
            self._in_flight.append(None)
        else:
            self._in_flight_gauge.inc()

    def request_finished(self) -> None:
        """Count one request fewer in flight."""
        if self._in_flight_gauge is None:
            self._in_flight.pop()
        else:
            self._in_flight_gauge.dec()

    def observe(self, method: str, route: str, status: object, duration: float, size: int) -> None:
        """Record one finished request: count it, its duration in seconds and its body bytes."""
        if method not in self._methods:
            method = OTHER_METHOD
        series = self._cache.get((method, route, status))
        if series is None:
            series = self._new_series(method, route, status)
        series.record(duration, size)

    def _new_series(self, method: str, route: str, status: object) -> LocalSeries | _ClientSeries:
        labels = (method, route, status_label(status), *self._const)
        with self._lock:
            series = self._by_labels.get(labels)
            if series is None and len(self._by_labels) >= self._max_label_sets:
                # Cardinality guard: a label set never seen, past the limit, joins the overflow route.
                labels = (method, OVERFLOW_ROUTE, labels[2], *self._const)
                series = self._by_labels.get(labels)
            if series is None:
                series = self._build_series(labels)
                self._by_labels[labels] = series
            if len(self._cache) < 4 * self._max_label_sets:
                # Raw keys are bounded by the app's statuses; the cap only guards odd apps.
                self._cache[(method, route, status)] = series
        return series

    def _build_series(self, labels: tuple[str, ...]) -> LocalSeries | _ClientSeries:
        if self._metric_objects is None:
            return LocalSeries(labels, self._bounds, self._lock)
        requests, duration, size = self._metric_objects
        return _ClientSeries(requests.labels(*labels), duration.labels(*labels), size.labels(*labels))

    @property
    def series_count(self) -> int:
        """How many distinct label sets have been recorded."""
        return len(self._by_labels)


def register_metrics(
    service_name: str,
    registry: CollectorRegistry | None = None,
    *,
    namespace: str = "",
    service_label: str | None = "service",
    buckets: Sequence[float] = DEFAULT_DURATION_BUCKETS,
    extra_methods: Iterable[str] = (),
    max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
) -> HTTPMetrics:
    """Register the HTTP server metrics of ``service_name`` on ``registry``.

    Args:
        service_name: the service; also the value of the ``service_label`` constant label.
        registry: where to register; a fresh ``CollectorRegistry`` when ``None`` (never the
            global default registry).
        namespace: a prefix for every metric name (``myapp`` gives ``myapp_http_requests_total``).
        service_label: name of the constant label carrying ``service_name``; ``None`` for none.
        buckets: duration histogram bounds in seconds; OpenTelemetry's advisory ones by default.
        extra_methods: methods kept as labels besides the standard ones (e.g. ``PROPFIND``).
        max_label_sets: distinct ``(method, route, status)`` sets before new routes overflow.

    Raises:
        ValueError: an option is out of range, or the metrics already exist on ``registry``.
        TypeError: an option has the wrong type.
    """
    check_str("service_name", service_name)
    if registry is not None:
        check_instance("registry", registry, CollectorRegistry, "a prometheus_client CollectorRegistry")
    check_str("namespace", namespace, allow_empty=True)
    if service_label is not None:
        check_str("service_label", service_label)
    if service_label in LABEL_NAMES:
        raise ValueError(f"service_label must not be one of {LABEL_NAMES}")
    bounds = tuple(buckets)
    for index, bound in enumerate(bounds):
        if bound != math.inf:  # a last +Inf bucket is Prometheus's own; any other must be finite
            check_number(f"buckets[{index}]", bound)
    if not bounds:
        raise ValueError("buckets must be a non-empty sequence of numbers")
    if list(bounds) != sorted(set(bounds)):
        raise ValueError("buckets must be strictly increasing")
    methods = check_strings("extra_methods", extra_methods)
    if any(m != m.upper() for m in methods):
        raise ValueError(f"extra_methods must be upper-case method names, got {methods!r}")
    check_int("max_label_sets", max_label_sets, minimum=1)
    return HTTPMetrics(
        service_name,
        registry if registry is not None else CollectorRegistry(),
        namespace=namespace,
        service_label=service_label,
        buckets=bounds,
        extra_methods=methods,
        max_label_sets=max_label_sets,
    )


__all__ = [
    "DEFAULT_DURATION_BUCKETS",
    "DEFAULT_MAX_LABEL_SETS",
    "KNOWN_METHODS",
    "OTHER_METHOD",
    "OTHER_STATUS",
    "OVERFLOW_ROUTE",
    "HTTPMetrics",
    "method_label",
    "register_metrics",
    "status_label",
]
