"""RequestIDMiddleware: accept well-formed ids, make the others, echo, contextvar, websocket."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.context import get_request_id, request_id_var
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.logging import RequestIDMiddleware, is_valid_request_id, new_request_id
from asgi_kit.logging.request_id import MAX_REQUEST_ID_LENGTH
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope
from tests.harness.apps import bare_app

SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


class TestRequestIDContract(MiddlewareContract):
    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return RequestIDMiddleware(app, **options)

    def state_of(self, scope: Scope, response: RecordingSend) -> Any:
        return (scope["state"]["request_id"], response.header("x-request-id"))


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the request id it sees in the contextvar and in the scope."""
    body = f"{get_request_id()}|{scope['state'].get('request_id')}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def run(headers: list[tuple[str, str]] | None = None, **options: Any) -> tuple[RecordingSend, str]:
    send = await call_app(RequestIDMiddleware(echo_app, **options), make_scope(headers=headers or []))
    seen = send.body.decode().split("|")
    assert seen[0] == seen[1]
    return send, seen[0]


@pytest.mark.parametrize(
    "incoming",
    [
        "0f8fad5b-d9cb-469f-a165-70867728950e",  # a hyphenated UUID
        "a3f5c1d2e4b6a8c0d2e4f6a8b0c2d4e6",  # nginx $request_id
        "Root=1-67891233-abcdef012345678912345678".replace("=", "."),  # dotted ids
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",  # ULID
        "a",
        "x" * MAX_REQUEST_ID_LENGTH,
    ],
)
async def test_well_formed_incoming_id_is_kept_and_echoed(incoming: str) -> None:
    """A well-formed incoming id is used for the request and echoed unchanged."""
    send, seen = await run([("X-Request-ID", incoming)])
    assert seen == incoming
    assert send.header_values("x-request-id") == [incoming]


@pytest.mark.parametrize(
    "incoming",
    [
        "",
        "x" * (MAX_REQUEST_ID_LENGTH + 1),
        "abc def",
        "abc\r\nX-Injected: 1",
        "<script>",
        "id;drop",
        "caf\u00e9",
        '"quoted"',
        "a/b",
    ],
)
async def test_malformed_incoming_id_is_replaced(incoming: str) -> None:
    """A malformed incoming id is never used, logged or echoed: a fresh one replaces it."""
    send, seen = await run([("X-Request-ID", incoming)])
    assert seen != incoming
    assert is_valid_request_id(seen) and len(seen) == 32
    assert send.header_values("x-request-id") == [seen]


async def test_duplicate_headers_get_a_fresh_id() -> None:
    """Two X-Request-ID headers on one request: neither is trusted, a new id is made."""
    send, seen = await run([("X-Request-ID", "first"), ("x-request-id", "second")])
    assert seen not in ("first", "second")
    assert send.header_values("x-request-id") == [seen]


async def test_untrusted_incoming_id_is_ignored() -> None:
    """trust_incoming=False always makes a new id, even for a well-formed one."""
    _, seen = await run([("X-Request-ID", "client-chosen")], trust_incoming=False)
    assert seen != "client-chosen"


async def test_custom_header_and_generator() -> None:
    """The header name is configurable (case-insensitively) and the generator pluggable."""
    send, seen = await run(
        [("X-Correlation-ID", "bad id")], header="X-Correlation-ID", generator=lambda: "gen-1"
    )
    assert seen == "gen-1"
    assert send.header("x-correlation-id") == "gen-1"
    assert send.header("x-request-id") is None


async def test_generated_ids_are_unique_and_well_formed() -> None:
    """Generated ids are 32 lowercase hex characters and do not repeat across batches."""
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)


async def test_contextvar_is_reset_after_the_request() -> None:
    """The contextvar holds the id only while the request runs, even when the app raises."""
    token = request_id_var.set("outer")
    try:
        await run()
        assert get_request_id() == "outer"

        async def failing(scope: Scope, receive: Receive, send: Send) -> None:
            assert get_request_id() not in (None, "outer")
            raise RuntimeError("x")

        with pytest.raises(RuntimeError):
            await call_app(RequestIDMiddleware(failing))
        assert get_request_id() == "outer"
    finally:
        request_id_var.reset(token)
    assert get_request_id() is None


async def test_state_dict_is_created_when_missing() -> None:
    """A scope without "state" gets one holding the request id."""
    scope = make_scope()
    del scope["state"]
    await RequestIDMiddleware(bare_app())(scope, StrictReceive(), RecordingSend())
    assert is_valid_request_id(scope["state"]["request_id"])


async def test_state_object_gets_an_attribute() -> None:
    """A non-dict state object (some frameworks use one) gets a request_id attribute."""

    class State:
        request_id: str | None = None

    scope = make_scope(state=State())
    await RequestIDMiddleware(bare_app())(scope, StrictReceive(), RecordingSend())
    assert is_valid_request_id(scope["state"].request_id or "")


async def test_the_kits_own_500_carries_the_id() -> None:
    """A 500 that ProblemDetailsMiddleware renders inside it echoes the header and the body id."""
    app = RequestIDMiddleware(ProblemDetailsMiddleware(bare_app(), reraise=False))
    send = await call_app(app, make_scope("/boom", headers=[("X-Request-ID", "req-500")]))
    assert send.status == 500
    assert send.header("x-request-id") == "req-500"
    assert send.json()["request_id"] == "req-500"


async def test_websocket_gets_an_id_echoed_on_accept() -> None:
    """A websocket connection gets an id in the scope and contextvar, echoed on websocket.accept."""
    seen: list[str | None] = []

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_request_id())
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-app", b"1")]})
        await send({"type": "websocket.close", "code": 1000})

    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = make_scope("/ws", type="websocket", headers=[("x-request-id", "ws-1")])
    await RequestIDMiddleware(ws_app)(scope, inbox.get, send)
    assert seen == ["ws-1"]
    assert scope["state"]["request_id"] == "ws-1"
    assert sent[0]["headers"] == [(b"x-app", b"1"), (b"x-request-id", b"ws-1")]
    assert "headers" not in sent[1]


async def test_body_and_other_messages_are_untouched() -> None:
    """Only the response start gets the header; body messages pass as they are."""
    send = await call_app(RequestIDMiddleware(bare_app()), make_scope("/stream"))
    assert send.messages[0]["type"] == "http.response.start"
    assert all("headers" not in m for m in send.messages[1:])


def test_options_are_validated() -> None:
    """Bad options fail at construction with an error naming the option."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None: ...

    with pytest.raises(ValueError, match="header"):
        RequestIDMiddleware(app, header="")
    with pytest.raises(ValueError, match="header"):
        RequestIDMiddleware(app, header="bad header")
    with pytest.raises(TypeError, match="header"):
        RequestIDMiddleware(app, header=b"X-Request-ID")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trust_incoming"):
        RequestIDMiddleware(app, trust_incoming="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        RequestIDMiddleware(app, generator="uuid")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exclude_paths"):
        RequestIDMiddleware(app, exclude_paths="/health")
    assert "X-Request-ID".lower() in repr(RequestIDMiddleware(app))


@given(st.text(alphabet=SAFE, min_size=1, max_size=MAX_REQUEST_ID_LENGTH))
def test_validator_accepts_every_safe_id(value: str) -> None:
    """Every 1..128-character string over [A-Za-z0-9._-] is accepted, as str and as bytes."""
    assert is_valid_request_id(value)
    assert is_valid_request_id(value.encode())


@given(st.text(max_size=300))
def test_validator_matches_its_definition(value: str) -> None:
    """The validator accepts exactly the bounded strings of safe characters, nothing else."""
    expected = 1 <= len(value) <= MAX_REQUEST_ID_LENGTH and all(c in SAFE for c in value)
    assert is_valid_request_id(value) is expected


@given(st.binary(max_size=300))
def test_validator_never_accepts_unsafe_bytes(value: bytes) -> None:
    """Arbitrary header bytes are accepted only when every byte is a safe ASCII character."""
    expected = 1 <= len(value) <= MAX_REQUEST_ID_LENGTH and all(chr(b) in SAFE for b in value)
    assert is_valid_request_id(value) is expected


@given(st.binary(max_size=200))
async def test_any_incoming_header_yields_a_safe_echo(value: bytes) -> None:
    """Whatever bytes the header holds, the id used and echoed is well formed."""
    scope = make_scope(headers=[(b"x-request-id", value)])
    send = await call_app(RequestIDMiddleware(echo_app), scope)
    echoed = send.header("x-request-id") or ""
    assert is_valid_request_id(echoed)
    assert scope["state"]["request_id"] == echoed


def test_uuid_text_is_valid() -> None:
    """str(uuid4()) and uuid4().hex, the ids other tools send, are both accepted."""
    assert is_valid_request_id(str(uuid.uuid4()))
    assert is_valid_request_id(uuid.uuid4().hex)
