"""MetricsMiddleware over raw ASGI: what it records for each kind of request, and the contract."""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.routes import UNMATCHED_ROUTE
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.metrics import OTHER_METHOD, HTTPMetrics, MetricsMiddleware, register_metrics
from asgi_kit.metrics.metrics import KNOWN_METHODS
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope


class TestMetricsContract(MiddlewareContract):
    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return MetricsMiddleware(app, metrics=register_metrics("contract"), **options)


def count(metrics: HTTPMetrics, route: str, status: str, method: str = "GET") -> float | None:
    return metrics.registry.get_sample_value(
        "http_requests_total",
        {"method": method, "route": route, "status": status, "service": metrics.service_name},
    )


def routed_app(template: str | None = "/items/{item_id}", status: int = 200, body: bytes = b"ok") -> ASGIApp:
    """An app that, like a router, writes the matched template into the scope while it runs."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if template is not None:
            scope["asgi_kit.route"] = template
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_route_template_is_the_label_not_the_raw_path() -> None:
    """Two raw paths of one route are counted under the template written by the router."""
    layer = MetricsMiddleware(routed_app())
    await call_app(layer, path="/items/1")
    await call_app(layer, path="/items/2")
    assert count(layer.metrics, "/items/{item_id}", "200") == 2.0


async def test_unmatched_paths_collapse_to_one_value() -> None:
    """A path no router matched is recorded under the one unmatched route value."""
    layer = MetricsMiddleware(routed_app(None, status=404))
    await call_app(layer, path="/nope")
    assert count(layer.metrics, UNMATCHED_ROUTE, "404") == 1.0


async def test_ten_thousand_random_paths_add_at_most_one_series_per_metric() -> None:
    """10,000 requests to random paths leave one label set per metric."""
    layer = MetricsMiddleware(routed_app(None, status=404))
    rng = random.Random(4)
    for _ in range(10_000):
        path = "/" + "".join(
            rng.choices(string.ascii_letters + string.digits + "/._-%", k=rng.randint(1, 40))
        )
        await layer(make_scope(path), StrictReceive(), RecordingSend())
    for family in layer.metrics.registry.collect():
        label_sets = {tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in family.samples}
        assert len(label_sets) <= 1, family.name
    assert count(layer.metrics, UNMATCHED_ROUTE, "404") == 10_000.0


async def test_exception_before_start_is_a_500() -> None:
    """An app that raises before responding is recorded as a 500 and the error propagates."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["asgi_kit.route"] = "/boom"
        raise RuntimeError("boom")

    layer = MetricsMiddleware(app)
    with pytest.raises(RuntimeError):
        await call_app(layer, path="/boom")
    assert count(layer.metrics, "/boom", "500") == 1.0


async def test_exception_after_start_keeps_the_real_status() -> None:
    """An app that fails mid-body is recorded with the status the client already got."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("late")

    layer = MetricsMiddleware(app)
    with pytest.raises(RuntimeError):
        await call_app(layer)
    assert count(layer.metrics, UNMATCHED_ROUTE, "200") == 1.0


async def test_client_disconnect_before_response_is_499() -> None:
    """A request whose client went away before any response is recorded as 499."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    layer = MetricsMiddleware(app)
    await layer(make_scope(), StrictReceive(disconnect_after_body=True), RecordingSend())
    assert count(layer.metrics, UNMATCHED_ROUTE, "499") == 1.0


async def test_client_gone_mid_stream_is_499_like_the_access_log() -> None:
    """A client that leaves after the response started, before its end, is a 499, not the 200 sent."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    layer = MetricsMiddleware(app)
    await layer(make_scope(), StrictReceive(disconnect_after_body=True), RecordingSend())
    assert count(layer.metrics, UNMATCHED_ROUTE, "499") == 1.0
    assert count(layer.metrics, UNMATCHED_ROUTE, "200") is None


async def test_send_raising_oserror_is_499() -> None:
    """A server whose send raises OSError (ASGI 2.4) had its client leave: 499, the error propagates."""

    async def gone(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("client gone")

    layer = MetricsMiddleware(routed_app(None))
    with pytest.raises(ConnectionResetError):
        await layer(make_scope(), StrictReceive(), gone)
    assert count(layer.metrics, UNMATCHED_ROUTE, "499") == 1.0


async def test_cancelled_request_is_499_and_leaves_no_request_in_flight() -> None:
    """A cancelled request task is recorded as 499 and the in-flight gauge returns to zero."""
    started = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.Event().wait()

    layer = MetricsMiddleware(app)
    task = asyncio.ensure_future(layer(make_scope(), StrictReceive(), RecordingSend()))
    await asyncio.wait_for(started.wait(), 2)
    assert layer.metrics.registry.get_sample_value("http_requests_in_flight", {"service": "app"}) == 1.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert count(layer.metrics, UNMATCHED_ROUTE, "499") == 1.0
    assert layer.metrics.registry.get_sample_value("http_requests_in_flight", {"service": "app"}) == 0.0


async def test_response_size_counts_every_streamed_chunk() -> None:
    """The size counter adds the bytes of every body chunk, streamed or not."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"abc", b"defg", b""):
            await send({"type": "http.response.body", "body": chunk, "more_body": bool(chunk)})

    layer = MetricsMiddleware(app)
    await call_app(layer)
    await call_app(layer)
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status": "200", "service": "app"}
    assert layer.metrics.registry.get_sample_value("http_response_size_bytes_total", labels) == 14.0


async def test_interleaved_requests_record_their_own_status() -> None:
    """Two concurrent requests each record their own route and status."""
    gate = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["asgi_kit.route"] = scope["path"]
        if scope["path"] == "/a":
            await gate.wait()
            status = 201
        else:
            gate.set()
            status = 202
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = MetricsMiddleware(app)
    await asyncio.wait_for(asyncio.gather(call_app(layer, path="/a"), call_app(layer, path="/b")), 5)
    assert count(layer.metrics, "/a", "201") == 1.0
    assert count(layer.metrics, "/b", "202") == 1.0


async def test_excluded_paths_are_not_recorded() -> None:
    """Requests to an excluded path leave no series behind."""
    layer = MetricsMiddleware(routed_app("/health"), exclude_paths=["/health"])
    await call_app(layer, path="/health")
    assert layer.metrics.series_count == 0


@pytest.mark.parametrize(
    ("exclude_paths", "path", "root_path", "recorded"),
    [
        (["/health"], "/health", "/api", False),  # exact pattern under a mount: the filter decides
        (["/health"], "/healthz", "/api", True),
        (["/static/*"], "/static/a.css", "", False),  # subtrees never take the inline shortcut
        (["/static/*"], "/static/../admin", "", True),
        (["/health", "/static/*"], "/health", "", False),
    ],
)
async def test_exclusion_beyond_the_inline_set_lookup(
    exclude_paths: list[str], path: str, root_path: str, recorded: bool
) -> None:
    """Mounted paths and subtree patterns are excluded by the same rules as the inline exact test."""
    layer = MetricsMiddleware(routed_app("/x"), exclude_paths=exclude_paths)
    await call_app(layer, path=path, root_path=root_path)
    assert (layer.metrics.series_count == 1) is recorded


async def test_websocket_is_not_recorded() -> None:
    """Websocket connections pass through without being counted as HTTP requests."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    layer = MetricsMiddleware(app)
    await layer(make_scope("/ws", type="websocket"), StrictReceive(), RecordingSend())
    assert seen == ["websocket"]
    assert layer.metrics.series_count == 0


async def test_path_option_serves_the_exposition_unrecorded() -> None:
    """With path=, that exact path answers with the metrics and is not itself counted."""
    layer = MetricsMiddleware(routed_app(), path="/metrics", exclude_paths=["/metrics"])
    await call_app(layer, path="/items/1")
    response = await call_app(layer, path="/metrics")
    assert response.status == 200
    assert (
        b'http_requests_total{method="GET",route="/items/{item_id}",service="app",status="200"} 1.0'
        in response.body
    )
    assert layer.metrics.series_count == 1


async def test_path_option_respects_root_path() -> None:
    """The exposition path is matched relative to root_path, as the app routes."""
    layer = MetricsMiddleware(routed_app(), path="/metrics")
    response = await call_app(layer, make_scope("/metrics", root_path="/api"))
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("text/plain")


async def test_custom_route_resolver() -> None:
    """route_resolver replaces the shared template resolver."""
    layer = MetricsMiddleware(routed_app(None), route_resolver=lambda scope: "/custom")
    await call_app(layer)
    assert count(layer.metrics, "/custom", "200") == 1.0


async def test_given_metrics_are_used_and_service_name_names_own_ones() -> None:
    """metrics= is recorded into; without it, service_name names the fresh metrics."""
    metrics = register_metrics("given")
    assert MetricsMiddleware(routed_app(), metrics=metrics).metrics is metrics
    own = MetricsMiddleware(routed_app(), service_name="mine")
    assert own.metrics.service_name == "mine"
    assert own.metrics.registry is not metrics.registry
    assert "MetricsMiddleware(metrics=HTTPMetrics(service_name='mine'" in repr(own)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metrics": object()}, TypeError, "metrics"),
        ({"path": "metrics"}, ValueError, "path"),
        ({"route_resolver": "nope"}, TypeError, "route_resolver"),
        ({"exclude_paths": "/health"}, TypeError, "exclude_paths"),
        ({"service_name": ""}, ValueError, "service_name"),
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    """Each bad option raises ValueError/TypeError naming it."""
    with pytest.raises(error, match=match):
        MetricsMiddleware(routed_app(), **kwargs)


async def test_settings_section_options_fit_the_middleware() -> None:
    """MetricsMiddleware(app, **settings.metrics.options()) serves /metrics and does not count it."""
    from asgi_kit.config import MetricsSettings

    layer = MetricsMiddleware(routed_app(), **MetricsSettings().options())
    await call_app(layer, path="/items/1")
    response = await call_app(layer, path="/metrics")
    assert response.status == 200
    assert b"http_requests_total" in response.body
    assert layer.metrics.series_count == 1


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=10), st.text(alphabet=string.printable, max_size=30)),
        min_size=1,
        max_size=25,
    )
)
def test_arbitrary_methods_and_paths_keep_labels_bounded(requests: list[tuple[str, str]]) -> None:
    """Whatever methods and paths clients send, method is known or _OTHER and route is one value."""
    layer = MetricsMiddleware(routed_app(None, status=404))

    async def drive() -> None:
        for method, path in requests:
            await layer(make_scope("/" + path, method=method), StrictReceive(), RecordingSend())

    asyncio.run(drive())
    for family in layer.metrics.registry.collect():
        for s in family.samples:
            assert s.labels.get("method", "GET") in KNOWN_METHODS | {OTHER_METHOD}
            assert s.labels.get("route", UNMATCHED_ROUTE) == UNMATCHED_ROUTE
    assert layer.metrics.series_count <= len(KNOWN_METHODS) + 1


async def test_a_failing_route_resolver_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    """If recording fails, the response is untouched and the failure is logged once."""

    def broken(scope: Scope) -> str:
        raise LookupError("resolver bug")

    layer = MetricsMiddleware(routed_app(), route_resolver=broken)
    response = await call_app(layer)
    assert (response.status, response.body) == (200, b"ok")
    assert [r.name for r in caplog.records] == ["asgi_kit.metrics"]
    assert layer.metrics.series_count == 0
