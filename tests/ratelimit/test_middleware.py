"""RateLimitMiddleware on raw ASGI: headers, refusals, subjects, quotas, reservations, policies."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.ratelimit import (
    InMemoryBackend,
    Quota,
    RateLimitMiddleware,
    format_duration,
    get_token_reservation,
)
from asgi_kit.testing import LifespanProbe, RecordingSend, StrictReceive, call_app, make_scope, run_lifespan
from tests.ratelimit.helpers import Clock, FailingBackend, chat_body, echo_app, principal, with_principal


def limited(clock: Clock | None = None, **options: Any) -> RateLimitMiddleware:
    backend = InMemoryBackend(clock=clock or Clock())
    return RateLimitMiddleware(echo_app, backend=backend, **options)


async def post(
    app: Any,
    body: bytes = b"",
    *,
    who: Any = principal(),
    path: str = "/v1/chat",
    headers: Any = (),
    chunks: Any = None,
) -> RecordingSend:
    scope = with_principal(make_scope(path, method="POST", headers=headers), who)
    return await call_app(app, scope, body=chunks or (body,))


async def get(app: Any, *, who: Any = principal(), path: str = "/v1/models") -> RecordingSend:
    return await call_app(app, with_principal(make_scope(path), who))


async def test_headers_on_every_limited_response() -> None:
    """Admitted responses carry OpenAI's x-ratelimit-* headers for requests and tokens."""
    app = limited(requests_per_minute=3, tokens_per_minute=1000)
    sent = await post(app, chat_body("a" * 40, max_tokens=90))
    assert sent.status == 200
    assert sent.header("x-ratelimit-limit-requests") == "3"
    assert sent.header("x-ratelimit-remaining-requests") == "2"
    assert sent.header("x-ratelimit-reset-requests") == "1m0s"
    assert sent.header("x-ratelimit-limit-tokens") == "1000"
    assert sent.header("x-ratelimit-remaining-tokens") == str(1000 - (10 + 90))
    assert sent.header("x-ratelimit-reset-tokens") == "1m0s"
    assert sent.header("retry-after") is None and sent.header("x-should-retry") is None
    assert sent.json()["reserved"] == 100


async def test_refusal_is_a_retryable_429_with_retry_after() -> None:
    """Past the limit: 429 problem, code rate_limit_exceeded, Retry-After rounded up and retry-after-ms."""
    clock = Clock()
    app = limited(clock, requests_per_minute=2)
    await get(app)
    clock.now += 400
    await get(app)
    clock.now += 100
    refused = await get(app)
    assert refused.status == 429
    assert refused.header("content-type") == "application/problem+json"
    assert refused.header("retry-after-ms") == str(60_000 - 500)
    assert refused.header("retry-after") == "60"  # 59.5 s rounded up
    assert refused.header("x-should-retry") is None
    assert refused.header("x-ratelimit-remaining-requests") == "0"
    assert refused.header("x-ratelimit-reset-requests") == format_duration(60_000 - 100)
    problem = refused.json()
    assert problem["status"] == 429 and problem["code"] == "rate_limit_exceeded"
    assert problem["error_type"] == "requests"
    assert "limit 2" in problem["detail"] and "59.5s" in problem["detail"]
    clock.now += 59_500
    assert (await get(app)).status == 200  # exactly when it said


async def test_openai_paths_on_openai_routes() -> None:
    """On openai_paths paths the body is OpenAI's error object; elsewhere problem+json."""
    app = limited(requests_per_minute=1, openai_paths=["/v1/*"])
    await get(app)
    openai = await get(app)
    assert openai.header("content-type") == "application/json"
    assert openai.json() == {
        "error": {
            "message": openai.json()["error"]["message"],
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    other = await get(app, path="/admin")
    assert other.status == 429 and other.header("content-type") == "application/problem+json"
    head = await call_app(app, with_principal(make_scope("/v1/x", method="HEAD"), principal()))
    assert head.status == 429 and head.body == b""
    everywhere = limited(requests_per_minute=1, openai_paths=True)
    await get(everywhere, path="/x")
    assert "error" in (await get(everywhere, path="/x")).json()


async def test_tokens_limit_refuses_with_tokens_type() -> None:
    """A call whose reservation does not fit the tokens left is refused as a tokens limit."""
    app = limited(tokens_per_minute=100, openai_paths=True)
    assert (await post(app, chat_body(max_tokens=60))).status == 200
    refused = await post(app, chat_body(max_tokens=60))
    assert refused.status == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert refused.header("x-ratelimit-remaining-tokens") == str(100 - 62)
    assert refused.header("x-ratelimit-limit-requests") is None  # requests are not limited


async def test_request_larger_than_the_limit_is_not_retryable() -> None:
    """A reservation above the whole limit can never fit: 429 with x-should-retry false, no Retry-After."""
    app = limited(tokens_per_minute=50)
    refused = await post(app, chat_body(max_tokens=500))
    assert refused.status == 429
    assert refused.header("x-should-retry") == "false" and refused.header("retry-after") is None
    assert "too large" in refused.json()["detail"]


async def test_settle_corrects_the_count() -> None:
    """settle(real) replaces the reservation in the window's count; a second settle does nothing."""
    app = limited(tokens_per_minute=1000)
    first = await post(app, chat_body(max_tokens=200), headers=[("x-used", "10")])
    assert first.header("x-ratelimit-remaining-tokens") == str(1000 - 202)
    second = await post(app, chat_body(max_tokens=200))
    assert second.header("x-ratelimit-remaining-tokens") == str(1000 - 10 - 202)


async def test_reservation_settle_validates_and_is_idempotent() -> None:
    """settle refuses a negative or non-int total and applies only once."""
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reservation = get_token_reservation(scope)
        assert reservation is not None
        with pytest.raises(TypeError):
            reservation.settle(1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="negative"):
            reservation.settle(-1)
        reservation.settle(0)
        reservation.settle(500)
        seen["settled"] = reservation.settled
        seen["repr"] = repr(reservation)
        await echo_app(scope, receive, send)

    layer = RateLimitMiddleware(app, tokens_per_minute=1000, backend=InMemoryBackend(clock=Clock()))
    await post(layer, chat_body(max_tokens=100))
    after = await post(layer, b'{"messages": []}')
    assert seen["settled"] is True and "settled=True" in seen["repr"]
    # the first call counts 0 after settling; the second reserved the default allowance
    assert after.header("x-ratelimit-remaining-tokens") == str(1000 - 1000)


async def test_body_is_replayed_to_the_app_streamed() -> None:
    """The body read for the estimate reaches the app whole, chunk by chunk, with more_body kept."""
    app = limited(tokens_per_minute=10_000)
    body = chat_body("x" * 100, max_tokens=5)
    chunks = [body[:10], body[10:50], body[50:]]
    sent = await post(app, chunks=chunks)
    assert json.loads(sent.json()["body"]) == json.loads(body)
    assert sent.json()["reserved"] == 5 + 100 // 4


async def test_estimate_reads_a_bounded_body() -> None:
    """Past max_estimate_body the read stops; the rest streams to the app untouched."""
    app = limited(tokens_per_minute=10**9, max_estimate_body=16)
    big = b"z" * 100
    sent = await post(app, chunks=[big[:10], big[10:20], big[20:]])
    assert sent.json()["body"] == big.decode()
    assert sent.json()["reserved"] == 1000 + 16 // 4  # not JSON: default allowance + the bytes estimated / 4


async def test_get_requests_reserve_nothing_and_custom_estimate() -> None:
    """A GET reserves 0 tokens; token_estimate replaces the default; a broken one falls back."""
    app = limited(tokens_per_minute=100)
    sent = await get(app)
    assert sent.header("x-ratelimit-remaining-tokens") == "100"
    custom = limited(tokens_per_minute=100, token_estimate=lambda scope, body: 7)
    assert (await post(custom, b"{}")).json()["reserved"] == 7

    def broken(scope: Scope, body: bytes) -> int:
        raise RuntimeError("boom")

    fallback = limited(tokens_per_minute=10**6, token_estimate=broken, default_completion_tokens=33)
    assert (await post(fallback, b"{}")).json()["reserved"] == 33
    nonsense = limited(tokens_per_minute=10**6, token_estimate=lambda s, b: -5, default_completion_tokens=4)
    assert (await post(nonsense, b"{}")).json()["reserved"] == 4


async def test_per_org_and_the_tightest_subject_in_headers() -> None:
    """Keys and their organization count apart; headers show the subject with the least left."""
    app = limited(quotas={"key": Quota(requests=5), "org": Quota(requests=3)})
    for key in ("a", "b"):
        sent = await get(app, who=principal(key=key, org="acme"))
        assert sent.status == 200
    third = await get(app, who=principal(key="c", org="acme"))
    assert third.header("x-ratelimit-limit-requests") == "3"
    assert third.header("x-ratelimit-remaining-requests") == "0"
    refused = await get(app, who=principal(key="d", org="acme"))
    assert refused.status == 429 and "(org)" in refused.json()["detail"]
    other_org = await get(app, who=principal(key="a", org="other"))
    assert other_org.status == 200 and other_org.header("x-ratelimit-remaining-requests") == "2"


async def test_subjects_without_an_id_are_skipped() -> None:
    """Anonymous requests pass untouched when only keys are limited; a JWT user counts as its user."""
    app = limited(requests_per_minute=1)
    for _ in range(3):
        anonymous = await get(app, who=None)
        assert anonymous.status == 200 and anonymous.header("x-ratelimit-limit-requests") is None
    jwt_user = principal(key=None, user="u1")
    assert (await get(app, who=jwt_user)).status == 200
    assert (await get(app, who=jwt_user)).status == 429
    nobody = principal(key=None, user=None)
    assert (await get(app, who=nobody)).header("x-ratelimit-limit-requests") is None


async def test_custom_and_client_subjects() -> None:
    """A subject function (a tenant header) and the client address are limited like keys."""

    def tenant(scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-tenant":
                return value.decode()
        return None

    app = limited(
        subjects={"tenant": tenant}, quotas={"tenant": Quota(requests=1), "client": Quota(requests=5)}
    )
    scope = make_scope("/x", headers=[("x-tenant", "t1")])
    assert (await call_app(app, scope)).status == 200
    assert (await call_app(app, make_scope("/x", headers=[("x-tenant", "t1")]))).status == 429
    assert (await call_app(app, make_scope("/x", headers=[("x-tenant", "t2")]))).status == 200
    no_client = await call_app(app, make_scope("/x", client=None))
    assert no_client.status == 200 and no_client.header("x-ratelimit-limit-requests") is None


async def test_quota_lookup_sync_async_and_broken(caplog: pytest.LogCaptureFixture) -> None:
    """The lookup's quota wins over the configured one; None keeps it; a failing lookup keeps it too."""
    records = {"gold": Quota(requests=3), "free": None}

    def lookup(kind: str, subject: str, scope: Scope) -> Quota | None:
        if subject == "broken":
            raise RuntimeError("db down")
        return records.get(subject)

    async def async_lookup(kind: str, subject: str, scope: Scope) -> Quota | None:
        await asyncio.sleep(0)
        return lookup(kind, subject, scope)

    for hook in (lookup, async_lookup):
        app = limited(requests_per_minute=1, quota_lookup=hook)
        gold = await get(app, who=principal(key="gold"))
        assert gold.header("x-ratelimit-limit-requests") == "3"
        assert (await get(app, who=principal(key="free"))).header("x-ratelimit-limit-requests") == "1"
        with caplog.at_level(logging.WARNING, logger="asgi_kit.ratelimit"):
            broken = await get(app, who=principal(key="broken"))
        assert broken.header("x-ratelimit-limit-requests") == "1"
        assert "db down" not in caplog.text and "RuntimeError" in caplog.text
    unlimited = limited(requests_per_minute=1, quota_lookup=lambda k, s, sc: Quota())
    for _ in range(3):
        assert (await get(unlimited)).header("x-ratelimit-limit-requests") is None


async def test_backend_down_allow_policy(caplog: pytest.LogCaptureFixture) -> None:
    """fail_open=True: the app answers (no headers), the failure is counted and logged once a second without its text."""
    backend = FailingBackend()
    app = RateLimitMiddleware(echo_app, requests_per_minute=1, backend=backend)
    with caplog.at_level(logging.WARNING, logger="asgi_kit.ratelimit"):
        statuses = [(await get(app)).status for _ in range(5)]
    assert statuses == [200] * 5
    assert app.backend_errors == 5 and backend.calls == 5
    lines = [r for r in caplog.records if r.name == "asgi_kit.ratelimit"]
    assert len(lines) == 1 and "ConnectionError" in lines[0].getMessage()
    assert "secret" not in caplog.text and "db.internal" not in caplog.text


async def test_backend_down_deny_policy() -> None:
    """fail_open=False: 503 problem with Retry-After, never a 500; websockets close 1011."""
    app = RateLimitMiddleware(echo_app, requests_per_minute=1, backend=FailingBackend(), fail_open=False)
    sent = await get(app)
    assert sent.status == 503 and sent.header("retry-after") == "1"
    assert sent.json()["code"] == "rate_limiter_unavailable"
    openai = RateLimitMiddleware(
        echo_app,
        requests_per_minute=1,
        backend=FailingBackend(),
        fail_open=False,
        openai_paths=True,
    )
    assert (await get(openai)).json()["error"]["type"] == "server_error"
    send = RecordingSend()
    await app(with_principal(make_scope("/ws", type="websocket"), principal()), StrictReceive(), send)
    assert send.messages[0] == {"type": "websocket.close", "code": 1011, "reason": "service unavailable"}


async def test_websocket_handshakes_are_counted() -> None:
    """A websocket handshake counts as a request; past the limit it is closed with 1008."""
    app = limited(requests_per_minute=1, tokens_per_minute=100)

    async def connect() -> list[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        queue.put_nowait({"type": "websocket.connect"})
        send = RecordingSend()
        await app(with_principal(make_scope("/ws", type="websocket"), principal()), queue.get, send)
        return send.messages

    assert (await connect())[0]["type"] == "websocket.accept"
    assert (await connect())[0] == {"type": "websocket.close", "code": 1008, "reason": "rate limit exceeded"}


async def test_lifespan_excluded_paths_and_no_quota_pass_through() -> None:
    """Lifespan passes untouched; excluded paths are never counted; no quota configured means no work."""
    probe = LifespanProbe()
    await run_lifespan(RateLimitMiddleware(probe, requests_per_minute=1))
    assert probe.seen == ["lifespan.startup", "lifespan.shutdown"]
    app = limited(requests_per_minute=1, exclude_paths=["/health"])
    for _ in range(3):
        sent = await get(app, path="/health")
        assert sent.status == 200 and sent.header("x-ratelimit-limit-requests") is None
    bare = RateLimitMiddleware(echo_app)
    assert (await get(bare)).header("x-ratelimit-limit-requests") is None


async def test_exceptions_propagate_before_and_after_the_response_started() -> None:
    """The layer neither swallows an app's exception nor sends a response of its own."""

    async def fails_early(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("early")

    async def fails_late(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("late")

    for inner, text in ((fails_early, "early"), (fails_late, "late")):
        app = RateLimitMiddleware(inner, requests_per_minute=5, backend=InMemoryBackend(clock=Clock()))
        send = RecordingSend()
        with pytest.raises(RuntimeError, match=text):
            await app(with_principal(make_scope("/x"), principal()), StrictReceive(), send)
        if text == "late":
            assert send.header("x-ratelimit-remaining-requests") == "4"


async def test_streamed_response_untouched() -> None:
    """Headers go on http.response.start only; every body chunk passes as it was sent."""

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
        for chunk in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    app = RateLimitMiddleware(stream, requests_per_minute=5)
    sent = await get(app)
    assert sent.body_chunks == [b"a", b"b", b"c", b""]
    assert sent.header("x-a") == "1" and sent.header("x-ratelimit-limit-requests") == "5"


async def test_interleaved_requests_keep_their_own_headers() -> None:
    """Two concurrent requests from different keys each get their own counts."""
    gate = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await gate.wait()
        await echo_app(scope, receive, send)

    app = RateLimitMiddleware(
        slow, quotas={"key": Quota(requests=10)}, backend=InMemoryBackend(clock=Clock())
    )
    await get(RateLimitMiddleware(echo_app, requests_per_minute=1))  # an unrelated app, unrelated counts
    first = asyncio.create_task(get(app, who=principal(key="a")))
    second = asyncio.create_task(get(app, who=principal(key="b")))
    third = asyncio.create_task(get(app, who=principal(key="b")))
    await asyncio.sleep(0.01)
    gate.set()
    a, b1, b2 = await asyncio.gather(first, second, third)
    assert a.header("x-ratelimit-remaining-requests") == "9"
    assert sorted(
        [b1.header("x-ratelimit-remaining-requests"), b2.header("x-ratelimit-remaining-requests")]
    ) == ["8", "9"]


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"requests_per_minute": 0}, ValueError, "requests_per_minute"),
        ({"requests_per_minute": "10"}, TypeError, "requests_per_minute"),
        ({"tokens_per_minute": True}, TypeError, "tokens_per_minute"),
        ({"window": 0}, ValueError, "window"),
        ({"window": "60"}, TypeError, "window"),
        ({"window": float("nan")}, ValueError, "window"),
        ({"fail_open": "no"}, TypeError, "fail_open"),
        ({"backend": object()}, TypeError, "backend"),
        ({"quota_lookup": 5}, TypeError, "quota_lookup"),
        ({"token_estimate": "x"}, TypeError, "token_estimate"),
        ({"default_completion_tokens": -1}, ValueError, "default_completion_tokens"),
        ({"default_completion_tokens": 1.0}, TypeError, "default_completion_tokens"),
        ({"max_estimate_body": 0}, ValueError, "max_estimate_body"),
        ({"quotas": {"nobody": Quota(requests=1)}}, ValueError, "quotas"),
        ({"quotas": {"key": 5}}, TypeError, "quotas"),
        ({"quotas": {"key": Quota(1)}, "requests_per_minute": 5}, ValueError, "quotas"),
        ({"subjects": {"": lambda s: None}}, ValueError, "subjects"),
        ({"subjects": {"a:b": lambda s: None}}, ValueError, "subjects"),
        ({"subjects": {"t": 5}}, TypeError, "subjects"),
        ({"exclude_paths": "/x"}, TypeError, "exclude_paths"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], names: str) -> None:
    """A bad option fails at construction with an error naming it."""
    with pytest.raises(error, match=names):
        RateLimitMiddleware(echo_app, **options)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"requests": 0}, ValueError), ({"tokens": "5"}, TypeError), ({"requests": True}, TypeError)],
)
def test_quota_is_validated(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Quota refuses non-positive or non-int numbers."""
    with pytest.raises(error):
        Quota(**kwargs)


def test_in_memory_backend_options() -> None:
    """InMemoryBackend validates max_keys and clock."""
    with pytest.raises(ValueError, match="max_keys"):
        InMemoryBackend(max_keys=0)
    with pytest.raises(TypeError, match="max_keys"):
        InMemoryBackend(max_keys="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        InMemoryBackend(clock=5)  # type: ignore[arg-type]
    assert repr(InMemoryBackend()) == "InMemoryBackend(keys=0)"
    app = RateLimitMiddleware(echo_app)
    assert isinstance(app.backend, InMemoryBackend)
