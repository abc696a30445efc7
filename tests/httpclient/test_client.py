"""HTTPClient against scripted loopback upstreams: retries, waits, deadlines, leaks, redirects."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate

import pytest
from aiohttp import web

from asgi_kit._asgi.context import TraceIds, request_id_var, trace_ids_var
from asgi_kit.httpclient import (
    AttemptRecord,
    AttemptTimeout,
    ConnectError,
    DeadlineExceeded,
    HTTPClient,
    HTTPClientError,
    HTTPStatusError,
    Limits,
    NetworkError,
    RetryAfterTooLong,
    RetryPolicy,
    Timeouts,
    TooManyRedirects,
    VirtualClock,
)
from tests.httpclient.conftest import ScriptedServer, hang, reply


def exact(bound: float) -> float:
    """No jitter: waits equal their exponential bound."""
    return bound


POLICY = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_max=4.0, jitter=exact)


def make(upstream: ScriptedServer, clock: VirtualClock | None = None, **options: object) -> HTTPClient:
    return HTTPClient(base_url=upstream.url, retry=POLICY, clock=clock or VirtualClock(), **options)  # type: ignore[arg-type]


async def test_503_503_200_succeeds_on_third_attempt(upstream: ScriptedServer) -> None:
    """Two 503s then a 200: the call returns the 200 after three attempts and two backoff waits."""
    upstream.script("/x", reply(503), reply(503), reply(200, "done"))
    clock = VirtualClock()
    records: list[AttemptRecord] = []
    async with make(upstream, clock, on_attempt=records.append) as client:
        response = await client.get("/x")
        assert client.connections_in_use == 0
    assert (response.status, response.content, response.attempts) == (200, b"done", 3)
    assert clock.sleeps == [0.5, 1.0]
    assert [(r.attempt, r.status, r.will_retry) for r in records] == [
        (1, 503, True),
        (2, 503, True),
        (3, 200, False),
    ]


async def test_exhausted_retries_return_last_response_and_leak_nothing(upstream: ScriptedServer) -> None:
    """Retries exhausted on 503: the last response comes back and no connection stays checked out."""
    upstream.script("/x", reply(503, "busy"))
    async with make(upstream) as client:
        response = await client.get("/x")
        assert client.connections_in_use == 0
        with pytest.raises(HTTPStatusError) as info:
            response.raise_for_status()
    assert response.attempts == 4 and len(upstream.hits("/x")) == 4
    assert info.value.response is response


async def test_post_without_key_is_not_retried(upstream: ScriptedServer) -> None:
    """A POST that got a 503 is not retried without an idempotency key."""
    upstream.script("/charge", reply(503))
    async with make(upstream) as client:
        response = await client.post("/charge", json={"amount": 1})
    assert response.status == 503 and len(upstream.hits("/charge")) == 1


async def test_post_with_key_is_retried_with_the_same_key(upstream: ScriptedServer) -> None:
    """A POST with an idempotency key is retried, sending the same Idempotency-Key each time."""
    upstream.script("/charge", reply(503), reply(502), reply(201, "charged"))
    async with make(upstream) as client:
        response = await client.post("/charge", json={"amount": 1}, idempotency_key="key-123")
    assert response.status == 201
    hits = upstream.hits("/charge")
    assert [h.headers["Idempotency-Key"] for h in hits] == ["key-123"] * 3
    assert {h.body for h in hits} == {b'{"amount": 1}'}


@pytest.mark.parametrize("name", ["Idempotency-Key", "idempotency-key"])
async def test_post_with_key_header_is_retried_with_the_same_key(upstream: ScriptedServer, name: str) -> None:
    """An Idempotency-Key given as a header makes a POST retryable, like the argument."""
    upstream.script("/charge", reply(503), reply(201, "charged"))
    async with make(upstream) as client:
        response = await client.post("/charge", json={"amount": 1}, headers={name: "key-h"})
    assert response.status == 201
    assert [h.headers["Idempotency-Key"] for h in upstream.hits("/charge")] == ["key-h"] * 2


async def test_client_default_key_header_makes_posts_retryable(upstream: ScriptedServer) -> None:
    """An Idempotency-Key among the client's default headers counts too; an empty one does not."""
    upstream.script("/a", reply(503), reply(200))
    upstream.script("/b", reply(503), reply(200))
    async with make(upstream, headers={"Idempotency-Key": "k"}) as client:
        assert (await client.post("/a")).status == 200
    async with make(upstream) as client:
        response = await client.post("/b", headers={"Idempotency-Key": ""})
    assert response.status == 503 and len(upstream.hits("/b")) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connection_refused_is_retried(closed_port_url: str, method: str) -> None:
    """Connection refused means the request never left: retried for every method, then ConnectError."""
    clock = VirtualClock()
    records: list[AttemptRecord] = []
    async with HTTPClient(retry=POLICY, clock=clock, on_attempt=records.append) as client:
        with pytest.raises(ConnectError) as info:
            await client.request(method, closed_port_url + "/x")
        assert client.connections_in_use == 0
    assert info.value.attempts == 4 and len(records) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert all(r.error == "ConnectError" for r in records)


async def test_non_retryable_status_is_returned_at_once(upstream: ScriptedServer) -> None:
    """A 404 is an answer, not a blip: one attempt."""
    upstream.script("/x", reply(404))
    async with make(upstream) as client:
        assert (await client.get("/x")).status == 404
    assert len(upstream.hits("/x")) == 1


def _http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": _http_date(NOW + 7)}, 7.0),
        ({"Retry-After": _http_date(NOW - 3600)}, 0.0),
        ({"Retry-After": "-5"}, 0.5),  # invalid: the backoff schedule decides
        ({"Retry-After": "soon, please"}, 0.5),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"retry-after-ms": "junk", "Retry-After": "3"}, 3.0),
    ],
)
async def test_retry_after_sets_the_wait(
    upstream: ScriptedServer, headers: dict[str, str], expected_wait: float
) -> None:
    """Retry-After (seconds, past/future dates) and retry-after-ms set the wait; bad values fall back."""
    upstream.script("/x", reply(429, headers=headers), reply(200))
    clock = VirtualClock(time=NOW)
    async with make(upstream, clock) as client:
        response = await client.get("/x")
    assert response.status == 200
    assert clock.sleeps == [pytest.approx(expected_wait, abs=1.0 if "GMT" in str(headers) else 1e-9)]


@pytest.mark.parametrize("value", ["100000", "9" * 400, _http_date(NOW + 86_400)])
async def test_retry_after_beyond_the_cap_gives_up_with_the_wait(
    upstream: ScriptedServer, value: str
) -> None:
    """A Retry-After longer than max_retry_after gives up at once; the error carries the wait."""
    upstream.script("/x", reply(503, "later", headers={"Retry-After": value}))
    clock = VirtualClock(time=NOW)
    async with make(upstream, clock, max_retry_after=30.0) as client:
        with pytest.raises(RetryAfterTooLong) as info:
            await client.get("/x")
        assert client.connections_in_use == 0
    assert info.value.retry_after > 30.0 and info.value.response.content == b"later"
    assert clock.sleeps == [] and len(upstream.hits("/x")) == 1


async def test_x_should_retry_false_vetoes_and_true_forces(upstream: ScriptedServer) -> None:
    """x-should-retry: false stops a retry of a 503; true retries a 400."""
    upstream.script("/no", reply(503, headers={"x-should-retry": "false"}))
    upstream.script("/yes", reply(400, headers={"x-should-retry": "true"}), reply(200))
    async with make(upstream) as client:
        assert (await client.get("/no")).status == 503
        assert (await client.get("/yes")).status == 200
    assert len(upstream.hits("/no")) == 1 and len(upstream.hits("/yes")) == 2


async def test_give_up_predicate_stops_retries(upstream: ScriptedServer) -> None:
    """RetryPolicy.give_up can refuse to retry a retryable response (e.g. quota exhausted)."""
    upstream.script("/x", reply(429, "insufficient_quota"))
    policy = RetryPolicy(jitter=exact, give_up=lambda r: b"insufficient_quota" in r.content)
    async with HTTPClient(base_url=upstream.url, retry=policy, clock=VirtualClock()) as client:
        assert (await client.get("/x")).status == 429
    assert len(upstream.hits("/x")) == 1


async def test_retry_false_disables_retries_for_one_call(upstream: ScriptedServer) -> None:
    """retry=False on a call means one attempt."""
    upstream.script("/x", reply(503))
    async with make(upstream) as client:
        assert (await client.get("/x", retry=False)).attempts == 1


async def test_hung_server_hits_the_deadline_within_tolerance(upstream: ScriptedServer) -> None:
    """A server that never answers: per-attempt timeouts, then the deadline, after a bounded number of attempts."""
    upstream.script("/x", hang())
    records: list[AttemptRecord] = []
    policy = RetryPolicy(max_retries=10, backoff_base=0.05, backoff_max=0.1, jitter=exact)
    async with HTTPClient(
        base_url=upstream.url, timeout=0.4, deadline=1.5, retry=policy, on_attempt=records.append
    ) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            await client.get("/x")
        elapsed = time.monotonic() - started
        assert client.connections_in_use == 0
    assert 1.4 <= elapsed <= 2.5
    assert 3 <= info.value.attempts <= 5 and len(records) == info.value.attempts
    assert all(r.error in {"AttemptTimeout", "DeadlineExceeded"} for r in records)


async def test_attempt_timeout_without_deadline(upstream: ScriptedServer) -> None:
    """Without a deadline a hung server costs timeout x attempts, then AttemptTimeout."""
    upstream.script("/x", hang())
    async with make(upstream, timeout=0.2, max_retries=1) as client:
        with pytest.raises(AttemptTimeout) as info:
            await client.get("/x")
        assert client.connections_in_use == 0
    assert info.value.attempts == 2


async def test_deadline_stops_waiting_for_a_long_retry_after(upstream: ScriptedServer) -> None:
    """When the wait would outlive the deadline, the answer in hand is returned at once."""
    upstream.script("/x", reply(503, headers={"Retry-After": "20"}))
    clock = VirtualClock()
    async with make(upstream, clock, deadline=10.0) as client:
        response = await client.get("/x")
    assert response.status == 503 and clock.sleeps == []


async def test_deadline_already_spent_raises_before_any_attempt(upstream: ScriptedServer) -> None:
    """A deadline used up by earlier waits raises DeadlineExceeded before the next attempt."""

    class SlowClock(VirtualClock):
        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds + 100)

    upstream.script("/x", reply(503))
    async with make(upstream, SlowClock(), deadline=50.0) as client:
        with pytest.raises(DeadlineExceeded):
            await client.get("/x")
    assert len(upstream.hits("/x")) == 1


async def test_transport_error_waiting_past_deadline_raises_deadline(closed_port_url: str) -> None:
    """A refused connection whose backoff would outlive the deadline raises DeadlineExceeded."""
    policy = RetryPolicy(backoff_base=5.0, jitter=exact)
    async with HTTPClient(retry=policy, clock=VirtualClock(), deadline=1.0) as client:
        with pytest.raises(DeadlineExceeded) as info:
            await client.get(closed_port_url)
    assert isinstance(info.value.__cause__, ConnectError)


async def test_cancellation_during_backoff_stops_further_attempts(upstream: ScriptedServer) -> None:
    """Cancelling the caller while it waits to retry ends the call: no further attempt is made."""
    upstream.script("/x", reply(503))
    sleeping = asyncio.Event()

    class BlockingClock(VirtualClock):
        async def sleep(self, seconds: float) -> None:
            sleeping.set()
            await asyncio.Event().wait()

    async with make(upstream, BlockingClock()) as client:
        task = asyncio.create_task(client.get("/x"))
        await asyncio.wait_for(sleeping.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.connections_in_use == 0
        await asyncio.sleep(0.05)
    assert len(upstream.hits("/x")) == 1


async def test_cancellation_during_an_attempt_propagates_and_releases(upstream: ScriptedServer) -> None:
    """Cancelling while the upstream is thinking propagates at once and frees the connection."""
    started = asyncio.Event()
    upstream.script("/x", hang(started))
    async with make(upstream) as client:
        task = asyncio.create_task(client.get("/x"))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.connections_in_use == 0


async def test_dropped_connection_retried_for_get_not_for_post(upstream: ScriptedServer) -> None:
    """A connection dropped mid-request is a NetworkError: retried for GET, raised at once for POST."""

    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    upstream.script("/x", drop)
    async with make(upstream, max_retries=1) as client:
        with pytest.raises(NetworkError) as info:
            await client.get("/x")
        assert info.value.attempts == 2
        with pytest.raises(NetworkError) as info:
            await client.post("/x", data=b"body")
        assert info.value.attempts == 1
        assert client.connections_in_use == 0


async def test_credentials_are_dropped_on_redirect_to_another_origin(
    upstream: ScriptedServer, other_upstream: ScriptedServer
) -> None:
    """A redirect to another origin loses Authorization, Cookie and API-key headers; others survive."""
    upstream.script("/go", reply(302, headers={"Location": other_upstream.url + "/land"}))
    other_upstream.script("/land", reply(200, "landed"))
    secrets = {
        "Authorization": "Bearer s3cret",
        "Cookie": "session=1",
        "Proxy-Authorization": "Basic x",
        "X-API-Key": "k",
        "api-key": "k2",
    }
    async with make(upstream, headers={"X-Client": "kit"}) as client:
        response = await client.get("/go", headers=secrets)
    assert response.content == b"landed" and response.url == other_upstream.url + "/land"
    landed = other_upstream.hits("/land")[0].headers
    assert not any(name in landed for name in secrets)
    assert landed["X-Client"] == "kit"
    assert upstream.hits("/go")[0].headers["Authorization"] == "Bearer s3cret"


async def test_same_origin_redirect_keeps_credentials_and_303_becomes_get(upstream: ScriptedServer) -> None:
    """A same-origin 303 after a POST is followed as a GET that keeps Authorization."""
    upstream.script("/post", reply(303, headers={"Location": "/result"}))
    upstream.script("/result", reply(200, "result"))
    async with make(upstream) as client:
        response = await client.post("/post", json={"a": 1}, headers={"Authorization": "Bearer t"})
    result = upstream.hits("/result")[0]
    assert response.content == b"result" and result.method == "GET" and result.body == b""
    assert result.headers["Authorization"] == "Bearer t"


async def test_redirect_loop_raises_too_many_redirects(upstream: ScriptedServer) -> None:
    """A redirect loop stops after max_redirects hops."""
    upstream.script("/loop", reply(307, headers={"Location": "/loop"}))
    async with make(upstream, max_redirects=3) as client:
        with pytest.raises(TooManyRedirects):
            await client.get("/loop")
        assert client.connections_in_use == 0
    assert len(upstream.hits("/loop")) == 4


async def test_redirects_can_be_left_to_the_caller(upstream: ScriptedServer) -> None:
    """follow_redirects=False returns the redirect itself."""
    upstream.script("/go", reply(302, headers={"Location": "/elsewhere"}))
    async with make(upstream, follow_redirects=False) as client:
        assert (await client.get("/go")).status == 302


async def test_request_and_trace_ids_are_propagated(upstream: ScriptedServer) -> None:
    """The current request id and trace ids go out as X-Request-ID, traceparent and tracestate."""
    upstream.script("/x", reply(503), reply(200))
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    rid_token = request_id_var.set("req-42")
    trace_token = trace_ids_var.set(
        TraceIds("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", traceparent, "vendor=1")
    )
    try:
        async with make(upstream) as client:
            await client.get("/x")
            await client.get("/x", headers={"X-Request-ID": "explicit"})
    finally:
        trace_ids_var.reset(trace_token)
        request_id_var.reset(rid_token)
    first, second, third = upstream.hits("/x")
    for seen in (first, second):
        assert seen.headers["X-Request-ID"] == "req-42"
        assert seen.headers["traceparent"] == traceparent and seen.headers["tracestate"] == "vendor=1"
    assert third.headers["X-Request-ID"] == "explicit"


async def test_no_context_headers_outside_a_request(upstream: ScriptedServer) -> None:
    """Outside a request nothing is invented: no X-Request-ID or traceparent."""
    upstream.script("/x", reply(200))
    async with make(upstream) as client:
        await client.get("/x")
    seen = upstream.hits("/x")[0].headers
    assert "X-Request-ID" not in seen and "traceparent" not in seen


async def test_attempt_logs_carry_no_secrets(
    upstream: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """One log record per attempt, without headers, query strings or credentials."""
    upstream.script("/x", reply(503), reply(200))
    caplog.set_level(logging.DEBUG, logger="asgi_kit.httpclient")
    async with make(upstream) as client:
        await client.get("/x", params={"api_key": "s3cret"}, headers={"Authorization": "Bearer s3cret"})
    records = [r for r in caplog.records if r.name == "asgi_kit.httpclient"]
    assert [r.attempt for r in records] == [1, 2]  # type: ignore[attr-defined]
    assert [r.levelno for r in records] == [logging.INFO, logging.DEBUG]
    assert all("s3cret" not in r.getMessage() and "s3cret" not in str(r.__dict__) for r in records)


async def test_broken_on_attempt_hook_never_breaks_the_call(
    upstream: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_attempt is logged and ignored."""
    upstream.script("/x", reply(200))

    def broken(record: AttemptRecord) -> None:
        raise RuntimeError("metrics down")

    async with make(upstream, on_attempt=broken) as client:
        assert (await client.get("/x")).status == 200
    assert "on_attempt hook failed" in caplog.text


async def test_per_call_timeout_and_policy_override(upstream: ScriptedServer) -> None:
    """timeout= and retry= on a call override the client's for that call only."""
    upstream.script("/slow", hang())
    upstream.script("/x", reply(503))
    async with make(upstream) as client:
        with pytest.raises(AttemptTimeout):
            await client.get("/slow", timeout=Timeouts(attempt=0.1), retry=False)
        with pytest.raises(AttemptTimeout):
            await client.get("/slow", timeout=0.1, retry=False)
        response = await client.get("/x", retry=RetryPolicy(max_retries=1, jitter=exact))
    assert response.attempts == 2


async def test_stream_retries_before_headers_then_streams(upstream: ScriptedServer) -> None:
    """A stream is retried while it gets 503s; the 200 body is then read as it arrives."""

    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for part in (b"a", b"b", b"c"):
            await response.write(part)
        await response.write_eof()
        return response

    upstream.script("/s", reply(503), chunks)
    async with make(upstream) as client:
        async with client.stream("GET", "/s") as response:
            assert response.status == 200 and response.attempts == 2
            assert await response.read() == b"abc"
        assert client.connections_in_use == 0


async def test_stream_exhausted_retries_hand_back_the_error_body(upstream: ScriptedServer) -> None:
    """A stream whose retries run out yields the last error response with its body."""
    upstream.script("/s", reply(503, "busy"))
    async with make(upstream, max_retries=1) as client:
        async with client.stream("GET", "/s") as response:
            assert response.status == 503 and await response.read() == b"busy"
        async with client.stream("GET", "/s", retry=False) as response:
            assert [c async for c in response.iter_bytes()] == [b"busy"]


async def test_stream_abandoned_early_closes_its_connection(upstream: ScriptedServer) -> None:
    """Leaving a stream before its end closes the connection instead of pooling it."""
    release = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first")
        await release.wait()
        return response

    upstream.script("/s", endless)
    async with make(upstream) as client:
        async with client.stream("GET", "/s") as response:
            async for chunk in response.iter_bytes():
                assert chunk == b"first"
                break
        assert client.connections_in_use == 0
        release.set()


async def test_stream_broken_mid_body_is_wrapped(upstream: ScriptedServer) -> None:
    """A connection that dies mid-stream raises NetworkError, and the stream is not retried."""

    async def dies(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    upstream.script("/s", dies)
    async with make(upstream) as client:
        with pytest.raises(NetworkError):
            async with client.stream("GET", "/s") as response:
                await response.read()
        assert client.connections_in_use == 0
    assert len(upstream.hits("/s")) == 1


async def test_stream_idle_read_timeout(upstream: ScriptedServer) -> None:
    """Silence between chunks longer than read_timeout raises AttemptTimeout."""
    release = asyncio.Event()

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"x")
        await release.wait()
        return response

    upstream.script("/s", stalls)
    async with make(upstream, read_timeout=0.2) as client:
        with pytest.raises(AttemptTimeout):
            async with client.stream("GET", "/s") as response:
                await response.read()
        release.set()


async def test_response_helpers(upstream: ScriptedServer) -> None:
    """Response exposes text(), json(), is_success and a repr."""
    upstream.script("/j", reply(200, '{"a": 1}', headers={"Content-Type": "application/json"}))
    async with make(upstream) as client:
        response = await client.get("/j")
    assert response.json() == {"a": 1} and response.text() == '{"a": 1}' and response.is_success
    assert response.raise_for_status() is response
    assert repr(response).startswith("<Response [200] GET http://127.0.0.1:")


async def test_invalid_url_is_raised_not_retried() -> None:
    """A URL aiohttp cannot use raises HTTPClientError at once."""
    async with HTTPClient(retry=POLICY, clock=VirtualClock()) as client:
        with pytest.raises(HTTPClientError):
            await client.get("ftp://127.0.0.1/x")


async def test_usage_errors() -> None:
    """Using a closed client, a relative URL without base_url, or json and data together fails clearly."""
    client = HTTPClient()
    with pytest.raises(RuntimeError, match="not open"):
        await client.get("http://127.0.0.1/")
    async with client:
        with pytest.raises(RuntimeError, match="already open"):
            await client.__aenter__()
        with pytest.raises(ValueError, match="base_url"):
            await client.get("/relative")
        with pytest.raises(TypeError, match="json"):
            await client.post("http://127.0.0.1/", json={}, data=b"")
    assert client.connections_in_use == 0


async def test_success_is_never_retried_even_if_the_server_says_so(upstream: ScriptedServer) -> None:
    """x-should-retry: true on a 200 does not retry; a streamed 200 is handed over unread."""
    upstream.script("/x", reply(200, "fine", headers={"x-should-retry": "true"}))
    async with make(upstream) as client:
        assert (await client.get("/x")).attempts == 1
        async with client.stream("GET", "/x") as response:
            assert response.attempts == 1 and await response.read() == b"fine"
    assert len(upstream.hits("/x")) == 2


async def test_concurrent_calls_share_the_pool_without_leaks(upstream: ScriptedServer) -> None:
    """Twenty interleaved calls with retries all succeed and leave no connection checked out."""
    upstream.script("/x", reply(503), reply(200, "ok"))
    async with make(upstream, limits=Limits(max_connections=4)) as client:
        responses = await asyncio.gather(*(client.get("/x") for _ in range(20)))
        assert client.connections_in_use == 0
    assert {r.status for r in responses} == {200} and sum(r.attempts for r in responses) == 21
