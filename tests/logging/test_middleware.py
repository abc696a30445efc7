"""LoggingMiddleware: one safe JSON record per request, with the fields of contract section 6."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from asgi_kit._asgi.context import TraceIds, request_id_var, trace_ids_var
from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware
from asgi_kit.logging.middleware import CLIENT_CLOSED_REQUEST
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope
from tests.harness.apps import bare_app
from tests.logging.helpers import json_logger, record_factory_adding, records

TRACE = TraceIds(
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7", traceparent="00-x-y-01"
)


class TestLoggingContract(MiddlewareContract):
    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return LoggingMiddleware(app, logger=logging.getLogger("tests.logging.contract"), **options)


async def run(
    app: ASGIApp, scope: Scope | None = None, **options: Any
) -> tuple[RecordingSend, dict[str, Any]]:
    """One request through a LoggingMiddleware; returns the response and the one record."""
    with json_logger() as (logger, stream):
        send = await call_app(LoggingMiddleware(app, logger=logger, **options), scope or make_scope())
    (record,) = records(stream)
    return send, record


async def test_record_fields_for_a_plain_request() -> None:
    """A request gives one record with method, path, route, int status, duration, bytes, client, UA."""
    scope = make_scope("/items/7", headers=[("User-Agent", "curl/8.5")], client=("203.0.113.9", 4000))
    _, record = await run(bare_app(), scope)
    assert record["message"] == "request"
    assert record["method"] == "GET"
    assert record["path"] == "/items/7"
    assert record["route"] == "/items/{item_id}"
    assert record["status"] == 200 and isinstance(record["status"], int)
    assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
    assert record["bytes_sent"] == len(b'{"item_id": 7}')
    assert record["client"] == "203.0.113.9"
    assert record["user_agent"] == "curl/8.5"
    assert "error" not in record and "query" not in record and "principal" not in record


async def test_unmatched_route_collapses() -> None:
    """A path no route matched is logged with the one unmatched route value."""
    _, record = await run(bare_app(), make_scope("/nope/123"))
    assert (record["status"], record["route"], record["path"]) == (404, "<unmatched>", "/nope/123")


async def test_custom_route_resolver() -> None:
    """A user-supplied resolver decides the route template."""
    _, record = await run(bare_app(), make_scope("/ok"), route_resolver=lambda scope: "/custom")
    assert record["route"] == "/custom"


async def test_streamed_body_bytes_are_summed() -> None:
    """bytes_sent is the sum of every body chunk of a streamed response."""
    send, record = await run(bare_app(), make_scope("/stream"))
    assert record["bytes_sent"] == len(send.body) > 0


async def test_request_id_and_trace_ids_are_logged() -> None:
    """The record carries the request id of RequestIDMiddleware and the trace ids of the response."""

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        token = trace_ids_var.set(TRACE)  # what a tracing layer inside this one does
        try:
            await bare_app()(scope, receive, send)
        finally:
            trace_ids_var.reset(token)

    with json_logger() as (logger, stream):
        app = RequestIDMiddleware(LoggingMiddleware(traced, logger=logger))
        send = await call_app(app, make_scope("/ok", headers=[("X-Request-ID", "rid-42")]))
    (record,) = records(stream)
    assert send.header("x-request-id") == "rid-42"
    assert (record["request_id"], record["trace_id"], record["span_id"]) == (
        "rid-42",
        TRACE.trace_id,
        TRACE.span_id,
    )


async def test_request_id_from_scope_state_without_the_contextvar() -> None:
    """Without the contextvar the id stored in scope["state"] is logged."""
    _, record = await run(bare_app(), make_scope(state={"request_id": "from-state"}))
    assert record["request_id"] == "from-state"


async def test_principal_is_logged_without_credentials() -> None:
    """The principal's id, org and role are logged; its claims and credentials never are."""
    scope = make_scope("/ok", headers=[("Authorization", "Bearer eyJSECRETTOKEN")])
    set_principal(
        scope,
        Principal(
            user_id="u-1", org_id="o-1", role="org_user", auth_method="jwt", claims={"jti": "SECRETJTI"}
        ),
    )
    _, record = await run(bare_app(), scope, request_headers=["Authorization", "Accept"])
    assert record["principal"] == {"id": "u-1", "org_id": "o-1", "role": "org_user", "auth_method": "jwt"}
    assert record["headers"] == {"authorization": "REDACTED"}
    assert "SECRET" not in str(record)


async def test_principal_fields_follow_the_principal_object() -> None:
    """A reused principal logs the same fields; the next principal logs its own, escaped."""
    first = Principal(user_id="u-1", org_id=None, role="org_user", auth_method="jwt")
    second = Principal(user_id=None, key_id="k\n2", org_id="o-2", role="org_admin", auth_method="api_key")
    with json_logger() as (logger, stream):
        app = LoggingMiddleware(bare_app(), logger=logger)
        for principal in (first, first, second):
            scope = make_scope("/ok")
            set_principal(scope, principal)
            await call_app(app, scope)
    logged = [record["principal"] for record in records(stream)]
    assert logged[0] == logged[1] == {"id": "u-1", "org_id": None, "role": "org_user", "auth_method": "jwt"}
    assert logged[2] == {"id": "k\\x0a2", "org_id": "o-2", "role": "org_admin", "auth_method": "api_key"}


async def test_secret_query_parameters_are_redacted() -> None:
    """Secret query values never reach the record; the path never holds the query."""
    scope = make_scope("/ok", query_string=b"page=2&api_key=SECRETKEY&token=SECRETTOKEN&Password=SECRETPW")
    _, record = await run(bare_app(), scope)
    assert record["path"] == "/ok"
    assert record["query"] == "page=2&api_key=REDACTED&token=REDACTED&Password=REDACTED"


async def test_extra_redaction_options() -> None:
    """redact_headers and redact_query_params extend the defaults."""
    scope = make_scope(
        "/ok", query_string=b"otp=123", headers=[("X-Session", "SECRETSESSION"), ("Accept", "a")]
    )
    _, record = await run(
        bare_app(),
        scope,
        request_headers=["X-Session", "Accept"],
        redact_headers=["X-Session"],
        redact_query_params=["OTP"],
    )
    assert record["query"] == "otp=REDACTED"
    assert record["headers"] == {"x-session": "REDACTED", "accept": "a"}


async def test_repeated_logged_headers_are_joined() -> None:
    """A logged header sent twice is joined with a comma, as HTTP allows."""
    scope = make_scope("/ok", headers=[("Accept", "a"), ("Accept", "b")])
    _, record = await run(bare_app(), scope, request_headers=["Accept"])
    assert record["headers"] == {"accept": "a, b"}


HOSTILE = [
    '/x\r\n{"level":"CRITICAL","message":"forged"}',
    "/\u2028forged\u2029\x85\x1b[31mred\x00",
    "/" + "A" * 100_000,
]


@pytest.mark.parametrize("path", HOSTILE)
async def test_log_injection_through_the_request_is_impossible(path: str) -> None:
    """Hostile paths, user agents, query strings and headers give exactly one JSON line, bounded."""
    scope = make_scope(
        path,
        headers=[
            (b"user-agent", path.encode("utf-8")[:50_000]),
            (b"x-forwarded-for", b"1.2.3.4\r\nforged: 1"),
            (b"authorization", b"Basic U0VDUkVUOlNFQ1JFVA=="),
            (b"cookie", b"session=SECRETCOOKIE"),
            (b"x-api-key", b"SECRETAPIKEY"),
        ],
        query_string=path.encode("utf-8")[:50_000] + b"&token=SECRETQ",
        method="GET\r\nX",
        client=("10.0.0.1", 1),
    )
    with json_logger() as (logger, stream):
        middleware = LoggingMiddleware(
            bare_app(),
            logger=logger,
            trusted_proxies=["10.0.0.1"],
            request_headers=["Authorization", "Cookie", "X-API-Key"],
        )
        await call_app(middleware, scope)
    text = stream.getvalue()
    assert text.count("\n") == 1
    (record,) = records(stream)
    assert "SECRET" not in text and "U0VDUkVU" not in text
    for key in ("path", "query", "user_agent", "client", "method"):
        assert len(record[key]) <= 1024
        assert "\n" not in record[key] and "\r" not in record[key]
    assert record["headers"] == {"authorization": "REDACTED", "cookie": "REDACTED", "x-api-key": "REDACTED"}


async def test_client_from_trusted_proxy_only() -> None:
    """X-Forwarded-For is used only when the peer is a configured trusted proxy."""
    headers = [("X-Forwarded-For", "198.51.100.7, 10.0.0.2")]
    _, direct = await run(
        bare_app(), make_scope(headers=headers, client=("192.0.2.1", 1)), trusted_proxies=["10.0.0.0/8"]
    )
    _, proxied = await run(
        bare_app(), make_scope(headers=headers, client=("10.0.0.1", 1)), trusted_proxies=["10.0.0.0/8"]
    )
    _, untrusting = await run(bare_app(), make_scope(headers=headers, client=("10.0.0.1", 1)))
    assert direct["client"] == "192.0.2.1"
    assert proxied["client"] == "198.51.100.7"
    assert untrusting["client"] == "10.0.0.1"


async def test_no_client_no_user_agent() -> None:
    """A scope without a client or a User-Agent leaves those fields out, without error."""
    _, record = await run(bare_app(), make_scope(client=None))
    assert "client" not in record and "user_agent" not in record


async def test_exception_before_response_logs_500_with_error() -> None:
    """An app failing before its response is logged as 500 with error=true, and the error propagates."""
    with json_logger() as (logger, stream):
        with pytest.raises(RuntimeError):
            await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/boom"))
    (record,) = records(stream)
    assert (record["status"], record["error"], record["route"]) == (500, True, "/boom")
    assert "s3cr3t" not in stream.getvalue()


async def test_problem_details_500_inside_is_logged_as_500() -> None:
    """With ProblemDetailsMiddleware inside, the rendered 500 is what the record says."""
    with json_logger() as (logger, stream):
        app = LoggingMiddleware(ProblemDetailsMiddleware(bare_app(), reraise=False), logger=logger)
        send = await call_app(app, make_scope("/boom"))
    (record,) = records(stream)
    assert send.status == record["status"] == 500
    assert record["bytes_sent"] == len(send.body)


async def test_exception_after_response_start_keeps_real_status() -> None:
    """An app failing mid-body is logged with the status it sent and error=true."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-body")

    with json_logger() as (logger, stream):
        with pytest.raises(RuntimeError):
            await call_app(LoggingMiddleware(app, logger=logger))
    (record,) = records(stream)
    assert (record["status"], record["error"], record["bytes_sent"]) == (201, True, 4)


async def test_app_returning_without_response_is_an_error() -> None:
    """An app that returns without answering is logged as 500 with error=true."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return

    _, record = await run(app)
    assert (record["status"], record["error"]) == (500, True)


async def test_client_disconnect_before_completion_is_499() -> None:
    """A client that goes away mid-stream (http.disconnect seen) is logged as 499."""
    receive = StrictReceive()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await receive()  # the body
        message = await receive()  # waits for the disconnect
        assert message["type"] == "http.disconnect"

    with json_logger() as (logger, stream):
        task = asyncio.ensure_future(
            LoggingMiddleware(app, logger=logger)(make_scope(), receive, RecordingSend())
        )
        await asyncio.sleep(0)
        receive.disconnect()
        await asyncio.wait_for(task, 5)
    (record,) = records(stream)
    assert record["status"] == CLIENT_CLOSED_REQUEST
    assert "error" not in record


async def test_disconnect_after_completion_keeps_status() -> None:
    """http.disconnect after the response completed (a background listener) is not a 499."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        assert (await receive())["type"] == "http.disconnect"

    with json_logger() as (logger, stream):
        await LoggingMiddleware(app, logger=logger)(
            make_scope(), StrictReceive(disconnect_after_body=True), RecordingSend()
        )
    assert records(stream)[0]["status"] == 204


async def test_send_raising_oserror_is_499() -> None:
    """A server whose send raises OSError (ASGI 2.4 disconnect) gets a 499 record and the error."""

    async def closed_send(message: Any) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection reset")

    with json_logger() as (logger, stream):
        with pytest.raises(OSError, match="reset"):
            await LoggingMiddleware(bare_app(), logger=logger)(
                make_scope("/ok"), StrictReceive(), closed_send
            )
    assert records(stream)[0]["status"] == CLIENT_CLOSED_REQUEST


async def test_cancelled_request_is_499() -> None:
    """A request task cancelled before it answered is logged as 499, and the cancellation propagates."""
    started = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.Event().wait()

    with json_logger() as (logger, stream):
        task = asyncio.ensure_future(
            LoggingMiddleware(app, logger=logger)(make_scope(), StrictReceive(), RecordingSend())
        )
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert records(stream)[0]["status"] == CLIENT_CLOSED_REQUEST


async def test_pathsend_completes_the_response() -> None:
    """http.response.pathsend counts as the end of the response."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/dev/null"})

    _, record = await run(app)
    assert record["status"] == 200 and "error" not in record


async def test_failing_handler_never_fails_the_request() -> None:
    """A handler or filter that raises loses the record, never the response."""

    class Exploding(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:
            raise RuntimeError("handler down")

    logger = logging.getLogger("tests.logging.exploding")
    logger.propagate = False
    handler = Exploding()
    logger.addHandler(handler)
    try:
        send = await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
    finally:
        logger.removeHandler(handler)
    assert send.status == 200


async def test_disabled_level_logs_nothing() -> None:
    """When the logger's level filters the record out, nothing is built or written."""
    with json_logger("WARNING") as (logger, stream):
        send = await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
        await call_app(LoggingMiddleware(bare_app(), logger=logger, level="ERROR"), make_scope("/ok"))
    assert send.status == 200
    assert [r["level"] for r in records(stream)] == ["ERROR"]


async def test_excluded_paths_and_websockets_are_not_logged() -> None:
    """Excluded paths, websocket and lifespan scopes produce no record."""
    with json_logger() as (logger, stream):
        middleware = LoggingMiddleware(bare_app(), logger=logger, exclude_paths=["/health", "/static/*"])
        await call_app(middleware, make_scope("/health"))
        await call_app(middleware, make_scope("/static/app.css"))
    assert records(stream) == []


async def test_custom_record_factory_is_honoured() -> None:
    """With a custom LogRecord factory the record is made through it, fields included."""
    with record_factory_adding("region", "eu-1"):
        _, record = await run(bare_app(), make_scope("/ok"))
    assert record["region"] == "eu-1" and record["status"] == 200


async def test_filter_added_fields_reach_the_line() -> None:
    """Handler filters that add or rewrite attributes of the access record are seen in the line."""

    class AddZone(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.zone = "z1"
            return True

    class MaskPath(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.path = "/masked"
            return True

    with json_logger() as (logger, stream):
        logger.handlers[0].addFilter(AddZone())
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
        logger.handlers[0].removeFilter(logger.handlers[0].filters[0])
        logger.handlers[0].addFilter(MaskPath())
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
    first, second = records(stream)
    assert first["zone"] == "z1" and first["status"] == 200
    assert second["path"] == "/masked" and "zone" not in second


async def test_stock_formatter_sees_flat_fields() -> None:
    """Other formatters (python-json-logger's own) see the fields as plain record attributes."""
    from pythonjsonlogger.json import JsonFormatter

    from tests.logging.helpers import parse_lines

    with json_logger() as (logger, stream):
        logger.handlers[0].setFormatter(JsonFormatter())
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
    (record,) = parse_lines(stream.getvalue())
    assert record["status"] == 200 and record["route"] == "/ok"


async def test_interleaved_requests_log_their_own_fields() -> None:
    """Two interleaved requests each get a record with their own path, status and request id."""
    gate = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/a":
            await gate.wait()
        else:
            gate.set()
        status = 200 if scope["path"] == "/a" else 202
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode() * 2})

    with json_logger() as (logger, stream):
        layer = RequestIDMiddleware(LoggingMiddleware(app, logger=logger))
        await asyncio.gather(
            call_app(layer, make_scope("/a", headers=[("x-request-id", "rid-a")])),
            call_app(layer, make_scope("/b", headers=[("x-request-id", "rid-b")])),
        )
    by_path = {r["path"]: r for r in records(stream)}
    assert (by_path["/a"]["status"], by_path["/a"]["request_id"]) == (200, "rid-a")
    assert (by_path["/b"]["status"], by_path["/b"]["request_id"]) == (202, "rid-b")
    assert request_id_var.get() is None


def test_options_are_validated() -> None:
    """Bad options fail at construction, naming the option."""
    app = bare_app()
    logger = logging.getLogger("tests.logging.options")
    with pytest.raises(TypeError, match="logger"):
        LoggingMiddleware(app, logger=logging.LoggerAdapter(logger))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="message"):
        LoggingMiddleware(app, logger=logger, message=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_field_length"):
        LoggingMiddleware(app, logger=logger, max_field_length=8)
    with pytest.raises(TypeError, match="max_field_length"):
        LoggingMiddleware(app, logger=logger, max_field_length=True)
    with pytest.raises(TypeError, match="max_field_length"):
        LoggingMiddleware(app, logger=logger, max_field_length="1024")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="request_headers"):
        LoggingMiddleware(app, logger=logger, request_headers=[7])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="route_resolver"):
        LoggingMiddleware(app, logger=logger, route_resolver="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        LoggingMiddleware(app, logger=logger, level="LOUD")
    with pytest.raises(ValueError, match="trusted_proxies"):
        LoggingMiddleware(app, logger=logger, trusted_proxies=["nope"])
    with pytest.raises(ValueError, match="request_headers"):
        LoggingMiddleware(app, logger=logger, request_headers=["bad header"])
    with pytest.raises(TypeError, match="redact_headers"):
        LoggingMiddleware(app, logger=logger, redact_headers="Authorization")
    with pytest.raises(ValueError, match="redact_query_params"):
        LoggingMiddleware(app, logger=logger, redact_query_params=[""])
    assert "tests.logging.options" in repr(LoggingMiddleware(app, logger=logger))


async def test_access_record_has_the_standard_attributes() -> None:
    """The access record has what LogRecord.__init__ would give: time, thread, process, names."""
    import os
    import threading
    import time

    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    logger = logging.getLogger("tests.logging.attributes")
    logger.propagate = False
    handler = Capture()
    logger.addHandler(handler)
    try:
        before = time.time()
        await call_app(LoggingMiddleware(bare_app(), logger=logger, level="WARNING"), make_scope("/ok"))
    finally:
        logger.removeHandler(handler)
    (record,) = captured
    reference = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    assert set(reference.__dict__) <= set(record.__dict__)
    assert (record.name, record.levelname, record.levelno) == (logger.name, "WARNING", logging.WARNING)
    assert record.getMessage() == "request"
    assert before <= record.created <= time.time()
    assert record.process == os.getpid()
    assert (record.thread, record.threadName) == (threading.get_ident(), threading.current_thread().name)
    assert record.status == 200  # type: ignore[attr-defined]
