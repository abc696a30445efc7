"""register_metrics and HTTPMetrics: names, labels, registries, validation and label bounding."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from asgi_kit._asgi.routes import UNMATCHED_ROUTE
from asgi_kit.metrics import (
    DEFAULT_DURATION_BUCKETS,
    OTHER_METHOD,
    OVERFLOW_ROUTE,
    HTTPMetrics,
    register_metrics,
)
from asgi_kit.metrics.metrics import KNOWN_METHODS, OTHER_STATUS, method_label, status_label


def sample(metrics: HTTPMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"service": metrics.service_name, **labels})


def test_fresh_registry_when_none_given() -> None:
    """Without a registry each call gets its own, so two services in one process never clash."""
    a = register_metrics("a")
    b = register_metrics("b")
    assert a.registry is not b.registry
    a.observe("GET", "/x", 200, 0.01, 10)
    assert sample(a, "http_requests_total", method="GET", route="/x", status="200") == 1.0
    assert sample(b, "http_requests_total", method="GET", route="/x", status="200") is None


def test_injected_registry_is_used_and_default_registry_untouched() -> None:
    """The metrics land on the injected registry and never on prometheus-client's global one."""
    from prometheus_client import REGISTRY

    registry = CollectorRegistry()
    metrics = register_metrics("svc-injected", registry)
    assert metrics.registry is registry
    assert b"svc-injected" not in generate_latest(REGISTRY)
    metrics.observe("GET", "/x", 200, 0.01, 10)
    assert b'service="svc-injected"' in generate_latest(registry)


def test_registering_twice_on_one_registry_fails() -> None:
    """Registering the same metrics twice on one registry is refused by prometheus-client."""
    registry = CollectorRegistry()
    register_metrics("a", registry)
    with pytest.raises(ValueError, match="Duplicated"):
        register_metrics("b", registry)


def test_every_metric_is_exposed_with_its_labels() -> None:
    """One request yields the counter, histogram, size counter and in-flight gauge."""
    metrics = register_metrics("svc")
    metrics.observe("POST", "/items/{item_id}", 201, 0.02, 17)
    labels = {"method": "POST", "route": "/items/{item_id}", "status": "201"}
    assert sample(metrics, "http_requests_total", **labels) == 1.0
    assert sample(metrics, "http_request_duration_seconds_count", **labels) == 1.0
    assert sample(metrics, "http_request_duration_seconds_sum", **labels) == pytest.approx(0.02)
    assert sample(metrics, "http_request_duration_seconds_bucket", le="0.025", **labels) == 1.0
    assert sample(metrics, "http_request_duration_seconds_bucket", le="0.01", **labels) == 0.0
    assert sample(metrics, "http_response_size_bytes_total", **labels) == 17.0
    assert sample(metrics, "http_requests_in_flight") == 0.0


def test_duration_buckets_are_opentelemetry_advisory_ones() -> None:
    """The default histogram bounds are OpenTelemetry's advisory ones for HTTP server duration."""
    assert DEFAULT_DURATION_BUCKETS == (
        0,
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        2.5,
        5,
        7.5,
        10,
    )
    metrics = register_metrics("svc")
    metrics.observe("GET", "/", 200, 0.0, 0)
    text = generate_latest(metrics.registry).decode()
    for bound in ("0.0", "0.005", "0.075", "7.5", "10.0", "+Inf"):
        assert f'le="{bound}"' in text


def test_in_flight_gauge_follows_started_and_finished() -> None:
    """request_started/request_finished move the in-flight gauge up and down."""
    metrics = register_metrics("svc")
    metrics.request_started()
    metrics.request_started()
    assert sample(metrics, "http_requests_in_flight") == 2.0
    metrics.request_finished()
    assert sample(metrics, "http_requests_in_flight") == 1.0


def test_namespace_and_no_service_label() -> None:
    """namespace prefixes every name; service_label=None drops the constant label."""
    metrics = register_metrics("svc", namespace="shop", service_label=None)
    metrics.observe("GET", "/", 200, 0.0, 0)
    value = metrics.registry.get_sample_value(
        "shop_http_requests_total", {"method": "GET", "route": "/", "status": "200"}
    )
    assert value == 1.0
    assert metrics.registry.get_sample_value("shop_http_requests_in_flight", {}) == 0.0


def test_custom_service_label_name() -> None:
    """service_label names the constant label that carries the service name."""
    metrics = register_metrics("svc", service_label="app")
    metrics.observe("GET", "/", 200, 0.0, 0)
    assert (
        metrics.registry.get_sample_value(
            "http_requests_total", {"method": "GET", "route": "/", "status": "200", "app": "svc"}
        )
        == 1.0
    )


def test_unknown_methods_collapse_and_extra_methods_are_kept() -> None:
    """Methods outside the standard set become _OTHER unless listed in extra_methods."""
    metrics = register_metrics("svc", extra_methods=["PROPFIND"])
    metrics.observe("BREW", "/", 200, 0.0, 0)
    metrics.observe("PROPFIND", "/", 200, 0.0, 0)
    metrics.observe("get", "/", 200, 0.0, 0)
    assert sample(metrics, "http_requests_total", method=OTHER_METHOD, route="/", status="200") == 2.0
    assert sample(metrics, "http_requests_total", method="PROPFIND", route="/", status="200") == 1.0


def test_odd_statuses_collapse() -> None:
    """Statuses outside 100-599 (or not ints) are recorded as _OTHER."""
    metrics = register_metrics("svc")
    for status in (99, 600, 1000, "200", True):
        metrics.observe("GET", "/", status, 0.0, 0)
    assert sample(metrics, "http_requests_total", method="GET", route="/", status=OTHER_STATUS) == 5.0


def test_label_sets_past_the_limit_overflow_into_one_route() -> None:
    """Past max_label_sets, new routes join one overflow route instead of adding series."""
    metrics = register_metrics("svc", max_label_sets=3)
    for i in range(50):
        metrics.observe("GET", f"/r{i}", 200, 0.0, 0)
    assert sample(metrics, "http_requests_total", method="GET", route="/r2", status="200") == 1.0
    assert sample(metrics, "http_requests_total", method="GET", route=OVERFLOW_ROUTE, status="200") == 47.0
    assert metrics.series_count == 4
    metrics.observe("GET", "/r0", 200, 0.0, 0)
    assert sample(metrics, "http_requests_total", method="GET", route="/r0", status="200") == 2.0
    assert "series=4" in repr(metrics)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"service_name": ""}, ValueError, "service_name"),
        ({"registry": object()}, TypeError, "registry"),
        ({"namespace": 3}, TypeError, "namespace"),
        ({"service_label": ""}, ValueError, "service_label"),
        ({"service_label": "route"}, ValueError, "service_label"),
        ({"buckets": ()}, ValueError, "buckets"),
        ({"buckets": (0.1, float("nan"))}, ValueError, "buckets"),
        ({"buckets": (1.0, 0.5)}, ValueError, "buckets"),
        ({"extra_methods": "PROPFIND"}, TypeError, "extra_methods"),
        ({"extra_methods": ["propfind"]}, ValueError, "extra_methods"),
        ({"max_label_sets": 0}, ValueError, "max_label_sets"),
        ({"max_label_sets": True}, TypeError, "max_label_sets"),
        ({"service_name": 3}, TypeError, "service_name"),
        ({"buckets": (0.1, "1")}, TypeError, "buckets"),
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    """Each bad option raises ValueError/TypeError naming it."""
    options: dict[str, Any] = {"service_name": "svc", **kwargs}
    with pytest.raises(error, match=match):
        register_metrics(**options)


@given(st.text(max_size=20))
def test_method_label_is_bounded(method: str) -> None:
    """Any method string maps to a known method or _OTHER, never to itself when unknown."""
    label = method_label(method)
    assert label in KNOWN_METHODS | {OTHER_METHOD}
    assert (label == method) == (method in KNOWN_METHODS)


@given(st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats()))
def test_status_label_is_bounded(status: object) -> None:
    """Any status value maps to a three-digit code in 100-599 or _OTHER."""
    label = status_label(status)
    assert label == OTHER_STATUS or (label.isdigit() and 100 <= int(label) <= 599)


@given(st.lists(st.tuples(st.text(max_size=8), st.integers(min_value=-5, max_value=1200)), max_size=60))
def test_series_are_bounded_by_methods_and_statuses(requests: list[tuple[str, int]]) -> None:
    """Whatever methods and statuses arrive, label values stay within the bounded sets."""
    metrics = register_metrics("svc")
    for method, status in requests:
        metrics.observe(method, UNMATCHED_ROUTE, status, 0.001, 1)
    families = {f.name: f for f in metrics.registry.collect()}
    for s in families["http_requests"].samples:
        assert s.labels["method"] in KNOWN_METHODS | {OTHER_METHOD}
        assert s.labels["status"] == OTHER_STATUS or 100 <= int(s.labels["status"]) <= 599
    total = sum(s.value for s in families["http_requests"].samples if s.name == "http_requests_total")
    assert total == len(requests)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "BREW"]),
            st.sampled_from([200, 404, 500, 700]),
            st.one_of(st.sampled_from(DEFAULT_DURATION_BUCKETS), st.floats(min_value=0, max_value=20)),
            st.integers(min_value=0, max_value=10_000),
        ),
        max_size=30,
    )
)
def test_exposed_samples_match_prometheus_client_metrics(requests: list[tuple[str, int, float, int]]) -> None:
    """The single-process collector exposes exactly what prometheus-client's own metrics would."""
    from prometheus_client import Counter, Gauge, Histogram

    metrics = register_metrics("svc")
    reference = CollectorRegistry()
    names = ("method", "route", "status", "service")
    total = Counter("http_requests_total", "x", names, registry=reference)
    duration = Histogram(
        "http_request_duration_seconds", "x", names, buckets=DEFAULT_DURATION_BUCKETS, registry=reference
    )
    size = Counter("http_response_size_bytes", "x", names, registry=reference)
    Gauge("http_requests_in_flight", "x", ["service"], registry=reference).labels("svc").set(0)
    for method, status, seconds, nbytes in requests:
        metrics.observe(method, "/r", status, seconds, nbytes)
        labels = (method_label(method), "/r", status_label(status), "svc")
        total.labels(*labels).inc()
        duration.labels(*labels).observe(seconds)
        size.labels(*labels).inc(nbytes)

    def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in registry.collect()
            for s in f.samples
            if not s.name.endswith("_created")
        }

    ours, theirs = samples(metrics.registry), samples(reference)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value), key
