"""TracingMiddleware on raw ASGI: span shape, attributes, status, context, pass-through."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from asgi_kit._asgi.context import TraceIds, get_trace_ids
from asgi_kit._asgi.redaction import redact_query_values, redact_url_credentials
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope
from asgi_kit.tracing import TracingMiddleware
from asgi_kit.tracing.middleware import _split_host

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"


def routed_app(template: str | None = "/items/{item_id}", status: int = 200) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if template is not None:
            scope["asgi_kit.route"] = template
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


class TestTracingContract(MiddlewareContract):
    """The standard middleware contract, with spans recorded in memory."""

    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        self.exporter = InMemorySpanExporter()
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        return TracingMiddleware(app, tracer_provider=provider, **options)

    def state_of(self, scope: Scope, response: RecordingSend) -> Any:
        return scope["path"]

    async def test_interleaved_requests_get_their_own_spans(self) -> None:
        """Interleaved requests each end their own span with their own status and trace."""
        await self.test_interleaved_requests_keep_their_own_state()
        spans = {s.attributes["url.path"]: s for s in self.exporter.get_finished_spans()}  # type: ignore[index]
        assert spans["/a"].attributes["http.response.status_code"] == 200  # type: ignore[index]
        assert spans["/b"].attributes["http.response.status_code"] == 201  # type: ignore[index]
        assert spans["/a"].context.trace_id != spans["/b"].context.trace_id


async def test_server_span_name_and_attributes(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """One SERVER span named METHOD /template with the stable HTTP semconv attributes."""
    app = TracingMiddleware(routed_app(), tracer_provider=provider)
    scope = make_scope(
        "/items/42",
        query_string=b"q=1&api_key=s3cr3t&Token=abc&flag",
        headers=[
            ("host", "api.example.com:8443"),
            ("user-agent", "curl/8.0"),
            ("authorization", "Bearer s3cr3t"),
            ("cookie", "session=s3cr3t"),
            ("x-api-key", "s3cr3t"),
        ],
        scheme="https",
    )
    send = await call_app(app, scope)
    assert send.status == 200
    span = only_span(exporter)
    assert span.name == "GET /items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/items/42",
        "url.scheme": "https",
        "url.query": "q=1&api_key=REDACTED&Token=REDACTED&flag",
        "network.protocol.version": "1.1",
        "server.address": "api.example.com",
        "server.port": 8443,
        "client.address": "127.0.0.1",
        "user_agent.original": "curl/8.0",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
    }
    assert "s3cr3t" not in repr(span.to_json())


async def test_unmatched_route_is_just_the_method(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """An unmatched request is named by its method only, never its raw path."""
    await call_app(TracingMiddleware(routed_app(None, 404), tracer_provider=provider), path="/random/123")
    span = only_span(exporter)
    assert span.name == "GET"
    assert "http.route" not in (span.attributes or {})
    assert span.status.status_code is StatusCode.UNSET


async def test_unknown_method_is_other(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """An unknown method is recorded as _OTHER with the original kept, and named HTTP."""
    await call_app(TracingMiddleware(routed_app("/x"), tracer_provider=provider), method="FOO", path="/x")
    span = only_span(exporter)
    assert span.name == "HTTP /x"
    assert span.attributes["http.request.method"] == "_OTHER"  # type: ignore[index]
    assert span.attributes["http.request.method_original"] == "FOO"  # type: ignore[index]


async def test_server_address_falls_back_to_scope(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Without a Host header the server address comes from the ASGI scope."""
    await call_app(TracingMiddleware(routed_app(), tracer_provider=provider), path="/i")
    attributes = only_span(exporter).attributes or {}
    assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("example.com", "http", ("example.com", 80)),
        ("example.com", "https", ("example.com", 443)),
        ("[::1]:9000", "http", ("::1", 9000)),
        ("[::1]", "https", ("::1", 443)),
        ("example.com:notaport", "http", ("example.com", 80)),
    ],
)
async def test_host_header_split(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    host: str,
    scheme: str,
    expected: tuple[str, int],
) -> None:
    """server.address/port come from Host, with the scheme's default port when none is given."""
    scope = make_scope("/i", headers=[("host", host)], scheme=scheme)
    await call_app(TracingMiddleware(routed_app(), tracer_provider=provider), scope)
    attributes = only_span(exporter).attributes or {}
    assert (attributes["server.address"], attributes["server.port"]) == expected


async def test_host_split_is_remembered_per_scheme_and_bounded(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """One middleware: the same Host under two schemes keeps each default port; many hosts stay bounded."""
    app = TracingMiddleware(routed_app(), tracer_provider=provider)
    for scheme in ("http", "https", "http"):
        await call_app(app, make_scope("/i", headers=[("host", "example.com")], scheme=scheme))
    ports = [span.attributes["server.port"] for span in exporter.get_finished_spans() if span.attributes]
    assert ports == [80, 443, 80]
    for index in range(200):
        await call_app(app, make_scope("/i", headers=[("host", f"h{index}.example:81")]))
    assert len(app._hosts) <= 64
    last = exporter.get_finished_spans()[-1].attributes or {}
    assert (last["server.address"], last["server.port"]) == ("h199.example", 81)


async def test_query_can_be_omitted(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """record_query=False leaves url.query out entirely."""
    app = TracingMiddleware(routed_app(), tracer_provider=provider, record_query=False)
    await call_app(app, path="/i", query_string=b"a=1")
    assert "url.query" not in (only_span(exporter).attributes or {})


def test_redact_query_handles_encoded_names() -> None:
    """Percent- and plus-encoded secret names are still redacted; others are untouched."""
    secrets = frozenset({"api_key", "my token"})
    assert (
        redact_query_values("api%5Fkey=1&my+token=2&x=%41", secrets)
        == "api%5Fkey=REDACTED&my+token=REDACTED&x=%41"
    )


async def test_5xx_is_error(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """A 5xx response sets status ERROR and error.type to the status code."""
    await call_app(TracingMiddleware(routed_app("/x", 503), tracer_provider=provider), path="/x")
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "503"  # type: ignore[index]
    assert span.attributes["http.response.status_code"] == 503  # type: ignore[index]


async def test_4xx_status_unset(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """A 4xx response leaves the server span's status unset and no error.type."""
    await call_app(TracingMiddleware(routed_app("/x", 422), tracer_provider=provider), path="/x")
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})


async def test_exception_is_recorded_and_reraised(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """An exception is recorded as an event, sets ERROR and error.type, and propagates."""

    class BoomError(RuntimeError):
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["asgi_kit.route"] = "/boom"
        raise BoomError("boom")

    with pytest.raises(BoomError):
        await call_app(TracingMiddleware(app, tracer_provider=provider), path="/boom")
    span = only_span(exporter)
    assert span.name == "GET /boom"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"].endswith("BoomError")  # type: ignore[index, union-attr]
    assert "http.response.status_code" not in (span.attributes or {})
    assert [e.name for e in span.events] == ["exception"]


async def test_incoming_traceparent_is_continued(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A valid traceparent makes the span a child of the remote parent, tracestate kept."""
    seen: list[TraceIds | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_trace_ids())
        await routed_app()(scope, receive, send)

    headers = [("traceparent", TRACEPARENT), ("tracestate", "vendor=1"), ("tracestate", "t@sys=2")]
    await call_app(TracingMiddleware(app, tracer_provider=provider), path="/i", headers=headers)
    span = only_span(exporter)
    assert f"{span.context.trace_id:032x}" == TRACE
    assert span.parent is not None and span.parent.is_remote and f"{span.parent.span_id:016x}" == SPAN
    assert span.context.trace_state.to_header() == "vendor=1,t@sys=2"
    ids = seen[0]
    assert ids is not None
    assert ids.trace_id == TRACE and ids.span_id == f"{span.context.span_id:016x}"
    assert ids.traceparent == f"00-{TRACE}-{ids.span_id}-01"
    assert ids.tracestate == "vendor=1,t@sys=2"
    assert get_trace_ids() is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("traceparent", TRACEPARENT.upper()), ("tracestate", "a=1")], id="uppercase-hex"),
        pytest.param(
            [("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)], id="duplicate-traceparent"
        ),
        pytest.param([("traceparent", f"00-{'0' * 32}-{SPAN}-01")], id="zero-trace-id"),
        pytest.param([("traceparent", f"ff-{TRACE}-{SPAN}-01")], id="version-ff"),
    ],
)
async def test_invalid_traceparent_starts_new_trace(
    provider: TracerProvider, exporter: InMemorySpanExporter, headers: list[tuple[str, str]]
) -> None:
    """An invalid traceparent starts a new root trace and its tracestate is dropped."""
    await call_app(TracingMiddleware(routed_app(), tracer_provider=provider), path="/i", headers=headers)
    span = only_span(exporter)
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" != TRACE
    assert len(span.context.trace_state) == 0


async def test_unsampled_parent_is_respected(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A parent with the sampled flag off is followed: no span exported, ids still set for logs."""
    seen: list[TraceIds | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_trace_ids())
        await routed_app()(scope, receive, send)

    headers = [("traceparent", f"00-{TRACE}-{SPAN}-00")]
    await call_app(TracingMiddleware(app, tracer_provider=provider), path="/i", headers=headers)
    assert exporter.get_finished_spans() == ()
    assert seen[0] is not None and seen[0].trace_id == TRACE and seen[0].traceparent.endswith("-00")


async def test_header_name_casing_via_httpx(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """Mixed-case header names sent by a client are matched (servers lower-case them)."""
    app = TracingMiddleware(routed_app(), tracer_provider=provider)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/i", headers={"TraceParent": TRACEPARENT, "TRACESTATE": "a=1"})
    assert response.status_code == 200
    span = only_span(exporter)
    assert f"{span.context.trace_id:032x}" == TRACE
    assert span.context.trace_state.to_header() == "a=1"


async def test_app_spans_are_children(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """Spans the app starts are children of the server span (the OTel context is active)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with provider.get_tracer("app").start_as_current_span("work"):
            pass
        await routed_app()(scope, receive, send)

    await call_app(TracingMiddleware(app, tracer_provider=provider), path="/i")
    work, server = exporter.get_finished_spans()
    assert work.parent is not None and work.parent.span_id == server.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_no_send_receive_sub_spans(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """A streamed request and response produce exactly one span."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"a", b"b", b""):
            await send({"type": "http.response.body", "body": chunk, "more_body": bool(chunk)})

    send = RecordingSend()
    layer = TracingMiddleware(app, tracer_provider=provider)
    await layer(make_scope("/s", method="POST"), StrictReceive([b"1", b"2"]), send)
    assert send.body == b"ab"
    assert len(exporter.get_finished_spans()) == 1


async def test_noop_provider_passes_through(exporter: InMemorySpanExporter) -> None:
    """With the no-op provider the app gets the server's own send and no trace ids are set."""
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((send, get_trace_ids()))

    send = RecordingSend()
    await TracingMiddleware(app, tracer_provider=NoOpTracerProvider())(make_scope(), StrictReceive(), send)
    assert seen == [(send, None)]


async def test_unset_global_provider_passes_through() -> None:
    """With no provider argument and no global provider, requests pass straight through."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "a test set the global"
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)

    send = RecordingSend()
    await TracingMiddleware(app)(make_scope(), StrictReceive(), send)
    assert seen == [send]


GLOBAL_SCRIPT = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from asgi_kit.tracing import TracingMiddleware
from asgi_kit.testing import call_app

async def app(scope, receive, send):
    scope["asgi_kit.route"] = "/g"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})

layer = TracingMiddleware(app)            # built before the global provider is set
asyncio.run(call_app(layer, path="/g"))
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)       # as an app would in its lifespan
asyncio.run(call_app(layer, path="/g"))
print([s.name for s in exporter.get_finished_spans()])
"""


def test_global_provider_set_after_construction_is_adopted() -> None:
    """A layer built before set_tracer_provider starts tracing once the global is set."""
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['GET /g']"


async def test_excluded_path_makes_no_span(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """exclude_paths requests are not traced."""
    await call_app(
        TracingMiddleware(routed_app(), tracer_provider=provider, exclude_paths=["/health"]), path="/health"
    )
    assert exporter.get_finished_spans() == ()


async def test_custom_route_resolver(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """A route_resolver supplies the template used for the span name."""
    app = TracingMiddleware(
        routed_app(None), tracer_provider=provider, route_resolver=lambda scope: "/custom"
    )
    await call_app(app, path="/whatever")
    assert only_span(exporter).name == "GET /custom"


async def test_cancellation_ends_span(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    """A cancelled request still ends its span and resets the contextvars."""
    started = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(
        TracingMiddleware(app, tracer_provider=provider)(make_scope(), StrictReceive(), RecordingSend())
    )
    await asyncio.wait_for(started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = only_span(exporter)
    # Servers cancel the request task when the client goes away: the kit's 499, not an error.
    assert span.attributes["http.response.status_code"] == 499  # type: ignore[index]
    assert span.status.status_code is StatusCode.UNSET


async def test_client_gone_mid_stream_is_499_and_not_an_error(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A client leaving after the start, before the end: status code 499 (as in the access log
    and the metrics), the span's status unset as for any 4xx, no error.type."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    layer = TracingMiddleware(app, tracer_provider=provider)
    await layer(make_scope(), StrictReceive(disconnect_after_body=True), RecordingSend())
    span = only_span(exporter)
    assert span.attributes["http.response.status_code"] == 499  # type: ignore[index]
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})


async def test_failure_raised_on_a_gone_client_is_recorded_but_not_an_error(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """An app that turns the failed send (OSError, ASGI 2.4) into its own exception, as frameworks
    do: the exception is an event, the outcome is 499 and the span's status stays unset."""

    class ClientDisconnectError(Exception):
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
        except OSError:
            raise ClientDisconnectError() from None

    async def gone(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("client gone")

    with pytest.raises(ClientDisconnectError):
        await TracingMiddleware(app, tracer_provider=provider)(make_scope(), StrictReceive(), gone)
    span = only_span(exporter)
    assert span.attributes["http.response.status_code"] == 499  # type: ignore[index]
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})
    assert [e.name for e in span.events] == ["exception"]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"tracer_provider": object()}, TypeError, "tracer_provider"),
        ({"route_resolver": "x"}, TypeError, "route_resolver"),
        ({"redact_query_params": "token"}, TypeError, "redact_query_params"),
        ({"redact_query_params": [5]}, TypeError, "redact_query_params"),
        ({"redact_query_params": [""]}, ValueError, "redact_query_params"),
        ({"exclude_paths": ["health"]}, ValueError, "exclude_paths"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], match: str) -> None:
    """Bad options fail at construction with an error naming the option."""
    with pytest.raises(error, match=match):
        TracingMiddleware(routed_app(), **options)


async def test_exception_message_credentials_are_scrubbed(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """user:password@ in an exception's message and stacktrace never reaches the span."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ConnectionError("could not reach postgresql://u:s3cr3t@db:5432/app")

    with pytest.raises(ConnectionError):
        await call_app(TracingMiddleware(app, tracer_provider=provider), path="/x")
    span = only_span(exporter)
    (event,) = span.events
    assert event.attributes["exception.message"] == "could not reach postgresql://u:REDACTED@db:5432/app"  # type: ignore[index]
    assert "s3cr3t" not in span.to_json()
    assert span.attributes["error.type"] == "ConnectionError"  # type: ignore[index]


@given(
    st.text(max_size=100),
    st.from_regex(r"\A[a-z][a-z0-9+.-]{0,10}\Z"),
    st.from_regex(r"\A[A-Za-z0-9_.~-]{1,20}\Z"),
    st.from_regex(r"\A[A-Za-z0-9_.~!$-]{1,20}\Z"),
    st.text(max_size=100),
)
def test_scrub_credentials_property(before: str, scheme: str, user: str, password: str, after: str) -> None:
    """Scrubbing never raises, is idempotent, and removes the password of any URL in the text."""
    text = f"{before} {scheme}://{user}:SECRET{password}@host/db {after}"
    scrubbed = redact_url_credentials(text)
    assert f"SECRET{password}@" not in scrubbed
    assert redact_url_credentials(scrubbed) == scrubbed


@given(st.binary(max_size=300), st.sets(st.sampled_from(["token", "api_key", "a b", "x"])))
def test_redact_query_property(query: bytes, names: set[str]) -> None:
    """Redaction never raises and never lets a listed parameter's value through."""
    redacted = redact_query_values(query.decode("latin-1"), frozenset(names))
    for part in redacted.replace(";", "&").split("&"):
        key, sep, value = part.partition("=")
        if sep and key.lower() in names:
            assert value == "REDACTED"


@given(st.text(max_size=100), st.sampled_from(["http", "https", "ws", "other"]))
def test_split_host_property(host: str, scheme: str) -> None:
    """Any Host value splits without raising into an address and a valid port or None."""
    address, port = _split_host(host, scheme)
    assert isinstance(address, str)
    assert port is None or 0 <= port <= 99999


async def test_broken_route_resolver_never_fails_the_request(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A route_resolver that raises is logged; the request succeeds and the span is named by method."""

    def broken(scope: Scope) -> str | None:
        raise LookupError("resolver bug")

    send = await call_app(
        TracingMiddleware(routed_app(), tracer_provider=provider, route_resolver=broken), path="/x"
    )
    assert send.status == 200
    assert only_span(exporter).name == "GET"


@pytest.mark.parametrize(
    ("patterns", "path", "root_path", "traced"),
    [
        (["/static/*"], "/static/a.css", "", False),
        (["/static/*"], "/staticfiles", "", True),
        (["/health"], "/health", "/api", False),
        (["/health"], "/healthz", "", True),
        (["/health"], "/HEALTH", "", True),
    ],
)
async def test_exclude_paths_subtrees_and_root_path(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    patterns: list[str],
    path: str,
    root_path: str,
    traced: bool,
) -> None:
    """Subtree patterns and mounted apps (root_path) are excluded exactly as PathFilter says."""
    app = TracingMiddleware(routed_app(), tracer_provider=provider, exclude_paths=patterns)
    await call_app(app, make_scope(path, root_path=root_path))
    assert len(exporter.get_finished_spans()) == (1 if traced else 0)


async def test_ids_outside_the_w3c_sizes_are_written_as_they_are(exporter: InMemorySpanExporter) -> None:
    """A custom id generator returning oversized ids does not fail the request."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    from asgi_kit._asgi.context import trace_ids_var

    class Oversized(IdGenerator):
        def generate_span_id(self) -> int:
            return 1 << 70

        def generate_trace_id(self) -> int:
            return 1 << 130

    provider = TracerProvider(id_generator=Oversized(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(trace_ids_var.get())
        await routed_app()(scope, receive, send)

    response = await call_app(TracingMiddleware(app, tracer_provider=provider), make_scope("/i"))
    assert response.status == 200
    assert seen[0].trace_id == f"{1 << 130:032x}" and seen[0].span_id == f"{1 << 70:016x}"
    provider.shutdown()
