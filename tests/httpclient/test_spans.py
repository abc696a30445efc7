"""HTTPClient's CLIENT spans: one per request sent, semconv attributes, their id in traceparent."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from yarl import URL

from asgi_kit._asgi.context import TraceIds, trace_ids_var
from asgi_kit._asgi.redaction import SECRET_QUERY_PARAMS
from asgi_kit.httpclient import (
    ConnectError,
    HTTPClient,
    NetworkError,
    RetryPolicy,
    TooManyRedirects,
    VirtualClock,
)
from asgi_kit.httpclient.spans import ClientSpans, url_attributes
from tests.httpclient.conftest import ScriptedServer, hang, reply

POLICY = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_max=4.0, jitter=lambda bound: bound)
SERVER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make(upstream: ScriptedServer, provider: object, **options: object) -> HTTPClient:
    return HTTPClient(
        base_url=upstream.url,
        retry=POLICY,
        clock=VirtualClock(),
        tracer_provider=provider,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def client_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]


def parent_of(traceparent: str) -> tuple[str, str, str]:
    """``(trace id, parent id, flags)`` of a version-00 traceparent."""
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert version == "00"
    return trace_id, parent_id, flags


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


async def test_each_call_gets_a_client_span_child_of_the_current_span(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Three calls under one span: three CLIENT children, each named in its own request's traceparent."""
    for path in ("/a", "/b", "/c"):
        upstream.script(path, reply(200))
    tracer = provider.get_tracer("app")
    async with make(upstream, provider) as client:
        with tracer.start_as_current_span("handler") as parent:
            for path in ("/a", "/b", "/c"):
                await client.get(path)
    spans = client_spans(exporter)
    assert len(spans) == 3
    parent_ctx = parent.get_span_context()
    sent = [parent_of(upstream.hits(path)[0].headers["traceparent"]) for path in ("/a", "/b", "/c")]
    for span, (trace_id, parent_id, flags), path in zip(spans, sent, ("/a", "/b", "/c"), strict=True):
        assert span.parent is not None and span.parent.span_id == parent_ctx.span_id
        assert (trace_id, parent_id) == hex_ids(span) and int(flags, 16) & 1  # sampled (0x02: random ids)
        assert span.name == "GET" and span.status.status_code is StatusCode.UNSET
        port = URL(upstream.url).port
        assert dict(span.attributes or {}) == {
            "http.request.method": "GET",
            "server.address": "127.0.0.1",
            "server.port": port,
            "url.full": f"{upstream.url}{path}",
            "http.response.status_code": 200,
        }
    assert len({parent_id for _, parent_id, _ in sent}) == 3
    assert {trace_id for trace_id, _, _ in sent} == {f"{parent_ctx.trace_id:032x}"}


async def test_without_a_current_span_the_client_span_starts_a_trace(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """No current span (no TracingMiddleware): the client span is a root and its ids go out."""
    upstream.script("/x", reply(200))
    async with make(upstream, provider) as client:
        await client.get("/x")
    (span,) = client_spans(exporter)
    assert span.parent is None
    assert parent_of(upstream.hits("/x")[0].headers["traceparent"])[:2] == hex_ids(span)


async def test_retries_get_a_span_each_with_the_resend_count(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """503, 503, 200: three spans; the retries carry resend_count 1 and 2; the 503s are errors."""
    upstream.script("/x", reply(503), reply(503), reply(200))
    async with make(upstream, provider) as client:
        with provider.get_tracer("app").start_as_current_span("handler"):
            assert (await client.get("/x")).status == 200
    spans = client_spans(exporter)
    assert [span.attributes.get("http.request.resend_count") for span in spans] == [None, 1, 2]  # type: ignore[union-attr]
    assert [span.attributes["http.response.status_code"] for span in spans] == [503, 503, 200]  # type: ignore[index]
    assert [span.attributes.get("error.type") for span in spans] == ["503", "503", None]  # type: ignore[union-attr]
    assert [span.status.status_code for span in spans] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    sent = [parent_of(seen.headers["traceparent"])[1] for seen in upstream.hits("/x")]
    assert sent == [hex_ids(span)[1] for span in spans]
    assert len({span.context.trace_id for span in spans}) == 1  # type: ignore[union-attr]


async def test_a_client_error_status_is_a_span_error(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """For a CLIENT span a 4xx sets status Error and error.type to the code (semconv)."""
    upstream.script("/x", reply(404))
    async with make(upstream, provider) as client:
        assert (await client.get("/x")).status == 404
    (span,) = client_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "404"


async def test_transport_errors_give_the_exception_class(
    closed_port_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Refused connections: a span per attempt, error.type the kit's class, no status code."""
    async with HTTPClient(retry=POLICY, clock=VirtualClock(), tracer_provider=provider) as client:
        with pytest.raises(ConnectError):
            await client.get(f"{closed_port_url}/x")
    spans = client_spans(exporter)
    assert len(spans) == 4
    for span in spans:
        assert span.attributes is not None and "http.response.status_code" not in span.attributes
        assert span.attributes["error.type"] == "asgi_kit.httpclient.errors.ConnectError"
        assert span.status.status_code is StatusCode.ERROR


async def test_redirect_hops_get_a_span_each(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A followed redirect is a request of its own: its span counts as a resend."""
    upstream.script("/old", reply(302, headers={"Location": "/new"}))
    upstream.script("/new", reply(200))
    async with make(upstream, provider) as client:
        assert (await client.get("/old")).status == 200
    first, second = client_spans(exporter)
    assert first.attributes is not None and second.attributes is not None
    assert (
        first.attributes["url.full"].endswith("/old") and first.attributes["http.response.status_code"] == 302
    )  # type: ignore[union-attr]
    assert (
        first.status.status_code is StatusCode.UNSET and "http.request.resend_count" not in first.attributes
    )
    assert (
        second.attributes["url.full"].endswith("/new") and second.attributes["http.request.resend_count"] == 1
    )  # type: ignore[union-attr]
    assert parent_of(upstream.hits("/new")[0].headers["traceparent"])[1] == hex_ids(second)[1]


async def test_too_many_redirects_marks_the_last_hop_an_error(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Past max_redirects the last 3xx span is an error (semconv), the others are not."""
    upstream.script("/loop", reply(307, headers={"Location": "/loop"}))
    async with make(upstream, provider, max_redirects=2) as client:
        with pytest.raises(TooManyRedirects):
            await client.get("/loop")
    spans = client_spans(exporter)
    assert [span.status.status_code for span in spans] == [
        StatusCode.UNSET,
        StatusCode.UNSET,
        StatusCode.ERROR,
    ]
    assert spans[-1].attributes is not None
    assert spans[-1].attributes["error.type"] == "asgi_kit.httpclient.errors.TooManyRedirects"


async def test_url_full_never_carries_credentials_or_secret_query_values(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """user:pass@ and ?api_key= become REDACTED in url.full; other parameters stay."""
    upstream.script("/x", reply(200))
    target = URL(upstream.url).with_user("alice").with_password("hunter2") / "x"
    async with HTTPClient(tracer_provider=provider) as client:
        await client.get(
            str(target), params={"api_key": "sk-s3cr3t", "page": "2", "X-Goog-Signature": "g00g"}
        )
    (span,) = client_spans(exporter)
    assert span.attributes is not None
    host = URL(upstream.url)
    assert span.attributes["url.full"] == (
        f"http://REDACTED:REDACTED@127.0.0.1:{host.port}/x?api_key=REDACTED&page=2&X-Goog-Signature=REDACTED"
    )
    text = repr(dict(span.attributes))
    assert "hunter2" not in text and "sk-s3cr3t" not in text and "alice" not in text and "g00g" not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.example/p", ("https://h.example/p", "h.example", 443)),
        ("http://h.example:8080/p?q=1#frag", ("http://h.example:8080/p?q=1#frag", "h.example", 8080)),
        ("https://tok@h/p", ("https://REDACTED@h/p", "h", 443)),
        ("https://u:p%40ss@h/p?token=t#f", ("https://REDACTED:REDACTED@h/p?token=REDACTED#f", "h", 443)),
        ("https://h/p?Api%5FKey=z;sig=1&AWSAccessKeyId=3&ok=1", ("https://h/p?Api_Key=REDACTED;sig=REDACTED&AWSAccessKeyId=REDACTED&ok=1", "h", 443)),
        ("https://h/p?API+KEY=1&api%2Dkey=2", ("https://h/p?API+KEY=1&api-key=REDACTED", "h", 443)),
        ("http://[::1]:9/x?key", ("http://[::1]:9/x?key", "::1", 9)),
    ],
)  # fmt: skip
def test_url_attributes(url: str, expected: tuple[str, str, int]) -> None:
    """url.full keeps what is not secret as sent; server.address and server.port come from the URL."""
    assert url_attributes(URL(url)) == expected


async def test_a_streamed_response_span_ends_with_the_stream(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The span of a stream stays open while the body is read and ends when the block is left."""
    upstream.script("/s", reply(200, b"chunk"))
    async with make(upstream, provider) as client:
        async with client.stream("GET", "/s") as response:
            assert client_spans(exporter) == []
            assert await response.read() == b"chunk"
            assert client_spans(exporter) == []
        (span,) = client_spans(exporter)
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


async def test_an_abandoned_or_broken_stream_still_ends_its_span(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Left early: the span ends, unset; broken mid-body: it ends with error.type NetworkError."""

    async def dies(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    upstream.script("/left", reply(200, b"x" * 10))
    upstream.script("/dies", dies)
    async with make(upstream, provider) as client:
        async with client.stream("GET", "/left"):
            pass
        with pytest.raises(NetworkError):
            async with client.stream("GET", "/dies") as response:
                await response.read()
    left, broken = client_spans(exporter)
    assert left.status.status_code is StatusCode.UNSET
    assert broken.status.status_code is StatusCode.ERROR
    assert broken.attributes is not None
    assert broken.attributes["error.type"] == "asgi_kit.httpclient.errors.NetworkError"


async def test_a_retried_stream_ends_the_spans_of_the_attempts_it_read(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A streamed call retried on 503: the 503 span ends at once, the streamed one with the stream."""
    upstream.script("/s", reply(503), reply(200, b"ok"))
    async with make(upstream, provider) as client:
        async with client.stream("GET", "/s") as response:
            assert [span.attributes["http.response.status_code"] for span in client_spans(exporter)] == [503]  # type: ignore[index]
            await response.read()
    assert len(client_spans(exporter)) == 2


async def test_cancelled_call_ends_its_span(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Cancelling a call in flight ends its span with error.type CancelledError; nothing leaks."""
    started = asyncio.Event()
    upstream.script("/x", hang(started))
    async with make(upstream, provider) as client:
        task = asyncio.create_task(client.get("/x"))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (span,) = client_spans(exporter)
    assert span.attributes is not None
    assert span.attributes["error.type"] == "asyncio.exceptions.CancelledError"


async def test_an_unknown_method_is_named_http(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A method semconv does not know: span name HTTP, method _OTHER, the original kept."""
    upstream.script("/x", reply(200))
    async with make(upstream, provider) as client:
        await client.request("PURGE", "/x")
    (span,) = client_spans(exporter)
    assert span.name == "HTTP" and span.attributes is not None
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "PURGE"


async def test_tracestate_passes_through_and_a_caller_traceparent_wins(
    upstream: ScriptedServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The parent's tracestate goes out with the client span's id; an explicit traceparent is kept."""
    upstream.script("/x", reply(200))
    parent = trace.SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=trace.TraceState([("vendor", "abc")]),
    )
    with trace.use_span(trace.NonRecordingSpan(parent)):
        async with make(upstream, provider, headers={"tracestate": "stale=1"}) as client:
            await client.get("/x")
            await client.get("/x", headers={"traceparent": SERVER_TRACEPARENT})
    first, second = upstream.hits("/x")
    span_one, span_two = client_spans(exporter)
    assert parent_of(first.headers["traceparent"])[:2] == hex_ids(span_one)
    assert first.headers["tracestate"] == "vendor=abc"
    assert second.headers["traceparent"] == SERVER_TRACEPARENT  # the caller's, untouched
    assert span_two.parent is not None and span_two.parent.span_id == 0xB7AD6B7169203331


async def test_an_unsampled_span_sends_its_id_with_the_flag_off(
    upstream: ScriptedServer, exporter: InMemorySpanExporter
) -> None:
    """A sampler that drops the trace: nothing exported, but a new span id goes out with flags 00."""
    dropping = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    dropping.add_span_processor(SimpleSpanProcessor(exporter))
    upstream.script("/x", reply(200))
    async with make(upstream, dropping) as client:
        await client.get("/x")
    _, parent_id, flags = parent_of(upstream.hits("/x")[0].headers["traceparent"])
    assert not int(flags, 16) & 1 and int(parent_id, 16) != 0 and exporter.get_finished_spans() == ()
    dropping.shutdown()


async def test_no_provider_means_no_span_and_the_server_span_propagated(upstream: ScriptedServer) -> None:
    """The no-op provider (or the unset global): no span; traceparent names the server span as before."""
    upstream.script("/x", reply(200))
    token = trace_ids_var.set(
        TraceIds("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", SERVER_TRACEPARENT, "vendor=1")
    )
    try:
        async with make(upstream, NoOpTracerProvider()) as noop, make(upstream, None) as unset:
            assert noop._spans.tracer is None and unset._spans.tracer is None
            await noop.get("/x")
            await unset.get("/x")
    finally:
        trace_ids_var.reset(token)
    for seen in upstream.hits("/x"):
        assert seen.headers["traceparent"] == SERVER_TRACEPARENT and seen.headers["tracestate"] == "vendor=1"


def test_spans_are_off_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-api installed the client works and never starts a span."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    spans = ClientSpans()
    spans.resolve()
    assert spans.tracer is None


def test_tracer_provider_is_validated() -> None:
    """tracer_provider must be an OpenTelemetry TracerProvider."""
    with pytest.raises(TypeError, match="tracer_provider"):
        HTTPClient(tracer_provider=object())  # type: ignore[arg-type]


GLOBAL_SCRIPT = """
import asyncio
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from asgi_kit.httpclient import HTTPClient

async def main():
    app = web.Application()
    app.router.add_get("/x", lambda request: web.Response(text="ok"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/x"
    before = HTTPClient()
    await before.__aenter__()                  # opened while the global is unset: spans stay off
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    async with HTTPClient() as after:          # opened after: follows the global provider
        await after.get(url)
    await before.get(url)
    await before.aclose()
    await runner.cleanup()
    print(len(exporter.get_finished_spans()))

asyncio.run(main())
"""


def test_the_global_provider_is_read_when_the_client_opens() -> None:
    """With no tracer_provider a client follows the global provider as it is when the client opens."""
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


async def test_a_stale_tracestate_is_dropped_when_the_span_has_none(
    upstream: ScriptedServer, provider: TracerProvider
) -> None:
    """A tracestate among the client's headers never goes out beside a span that carries none."""
    upstream.script("/x", reply(200))
    async with make(upstream, provider, headers={"tracestate": "stale=1"}) as client:
        await client.get("/x")
    assert "tracestate" not in upstream.hits("/x")[0].headers


async def test_ids_outside_the_w3c_sizes_are_written_as_they_are(upstream: ScriptedServer) -> None:
    """An id generator giving ids wider than W3C's still yields a traceparent, never an error."""
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class Wide(IdGenerator):
        def generate_span_id(self) -> int:
            return 1 << 70

        def generate_trace_id(self) -> int:
            return 1 << 130

    wide = TracerProvider(id_generator=Wide(), shutdown_on_exit=False)
    upstream.script("/x", reply(200))
    async with make(upstream, wide) as client:
        await client.get("/x")
    _, parent_id, _ = parent_of(upstream.hits("/x")[0].headers["traceparent"])
    assert parent_id == f"{1 << 70:016x}"
    wide.shutdown()


def test_url_attributes_are_kept_per_url_and_bounded(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """target() computes a URL's attributes once per key, keeps at most 64, never keeps params calls."""
    spans = ClientSpans(provider)
    spans.resolve()
    first = spans.target("/a", URL("http://h/a"))
    assert spans.target("/a", URL("http://h/other")) is first  # remembered under its key
    assert spans.target(None, URL("http://h/b?page=2")) == ("http://h/b?page=2", "h", 80)
    for index in range(70):
        spans.target(f"/{index}", URL(f"http://h/{index}"))
    assert len(spans._targets) <= 64
    assert spans.tracer is not None
    span = spans.start(spans.tracer, "GET", ("x://h/", "h", None), 0, None)  # a scheme with no port
    spans.end(span, 200)
    (finished,) = exporter.get_finished_spans()
    assert finished.attributes is not None and "server.port" not in finished.attributes


_SECRET_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="#"),
    min_size=1,
    max_size=40,
)


@given(
    user=_SECRET_TEXT,
    password=_SECRET_TEXT,
    name=st.sampled_from(sorted(SECRET_QUERY_PARAMS)).flatmap(
        lambda name: st.builds(
            lambda flips: "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=False)),
            st.lists(st.booleans(), min_size=len(name), max_size=len(name)),
        )
    ),
    secret=_SECRET_TEXT,
    other=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10),
)
def test_url_full_redacts_whatever_the_credentials_and_secrets(
    user: str, password: str, name: str, secret: str, other: str
) -> None:
    """Any user, password and secret parameter value (any case of its name) comes out REDACTED."""
    url = URL.build(
        scheme="https",
        user=user,
        password=password,
        host="h.example",
        path="/p",
        query={name: secret, "page": other},
    )
    full, address, port = url_attributes(url)
    parsed = URL(full)
    assert (parsed.user, parsed.password) == ("REDACTED", "REDACTED")
    assert parsed.query[name] == "REDACTED" and parsed.query["page"] == other
    assert (address, port) == ("h.example", 443)
