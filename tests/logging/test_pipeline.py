"""The access record takes the standard logging pipeline: record factory, logger and handler
filters, every handler, propagation, then the formatter; its line holds any request value."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit._asgi.context import TraceIds, trace_ids_var
from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.logging import JsonLogFormatter, LoggingMiddleware, new_logger
from asgi_kit.logging.logger import JsonLinesHandler
from asgi_kit.testing import call_app, make_scope
from tests.harness.apps import bare_app
from tests.logging.helpers import json_logger, parse_lines, records

TRACE = TraceIds("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "x")


def _principal_app(app: ASGIApp, principal: Principal) -> ASGIApp:
    async def with_principal(scope: Scope, receive: Receive, send: Send) -> None:
        set_principal(scope, principal)
        await app(scope, receive, send)

    return with_principal


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _isolated(logger: logging.Logger) -> Iterator[logging.Logger]:
    """``logger`` with its handlers and filters removed and propagation restored afterwards."""
    try:
        yield logger
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for log_filter in list(logger.filters):
            logger.removeFilter(log_filter)
        logger.propagate = True


async def test_the_line_of_a_new_logger() -> None:
    """Through new_logger's handler: core fields, static fields, principal, trace, redacted query."""
    principal = Principal(user_id="u-1", org_id="o-1", role="org_admin", auth_method="jwt")
    scope = make_scope(
        "/items/7",
        query_string=b"verbose=1&token=s3cr3t",
        headers=[("User-Agent", "curl/8.5")],
        client=("203.0.113.9", 4000),
    )
    token = trace_ids_var.set(TRACE)
    try:
        with json_logger(environment="prod") as (logger, stream):
            app = LoggingMiddleware(_principal_app(bare_app(), principal), logger=logger, message="GET done")
            await call_app(app, scope)
    finally:
        trace_ids_var.reset(token)
    (line,) = records(stream)
    assert list(line)[:6] == ["timestamp", "level", "service", "logger", "message", "environment"]
    assert (line["message"], line["environment"], line["level"]) == ("GET done", "prod", "INFO")
    assert list(line)[6:12] == ["method", "path", "route", "status", "duration_ms", "bytes_sent"]
    assert line["principal"] == {"id": "u-1", "org_id": "o-1", "role": "org_admin", "auth_method": "jwt"}
    assert (line["trace_id"], line["span_id"]) == (TRACE.trace_id, TRACE.span_id)
    assert line["query"] == "verbose=1&token=REDACTED" and "s3cr3t" not in stream.getvalue()


async def test_logger_filters_see_and_can_drop_the_record() -> None:
    """A filter on the logger receives the access record, and returning False drops it."""
    seen: list[int] = []

    def keep_errors_only(record: logging.LogRecord) -> bool:
        status = record.status  # type: ignore[attr-defined]
        seen.append(status)
        return bool(status >= 500)

    with json_logger() as (logger, stream):
        logger.addFilter(keep_errors_only)
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
        with pytest.raises(RuntimeError):
            await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/boom"))
        logger.removeFilter(keep_errors_only)
    assert seen == [200, 500]
    assert [line["status"] for line in records(stream)] == [500]


async def test_every_handler_gets_the_record() -> None:
    """A second handler on the logger receives the same record the JSON handler formats."""
    capture = _Capture()
    with json_logger() as (logger, stream):
        logger.addHandler(capture)
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
    (line,) = records(stream)
    (record,) = capture.records
    assert record.route == line["route"] == "/ok"  # type: ignore[attr-defined]


async def test_the_record_propagates_to_parent_handlers() -> None:
    """A child logger without handlers of its own writes through its parent's JSON handler."""
    with json_logger() as (parent, stream), _isolated(logging.getLogger(f"{parent.name}.access")) as child:
        child.setLevel(logging.INFO)
        await call_app(LoggingMiddleware(bare_app(), logger=child), make_scope("/ok"))
    (line,) = records(stream)
    assert (line["logger"], line["service"], line["status"]) == (child.name, parent.name, 200)


async def test_a_handler_level_above_the_record_drops_it() -> None:
    """The handler's own level still decides, as for any record."""
    with json_logger() as (logger, stream):
        logger.handlers[0].setLevel(logging.ERROR)
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope())
    assert stream.getvalue() == ""


async def test_a_formatter_of_your_own_formats_the_record() -> None:
    """A subclass of JsonLogFormatter, or a plain logging.Formatter, formats the access record."""

    class Tagged(JsonLogFormatter):
        def format(self, record: logging.LogRecord) -> str:
            return "tagged " + super().format(record)

    with json_logger() as (logger, stream):
        logger.handlers[0].setFormatter(Tagged("svc"))
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
        logger.handlers[0].setFormatter(logging.Formatter("%(levelname)s %(method)s %(route)s %(status)d"))
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
    tagged, plain = stream.getvalue().splitlines()
    assert tagged.startswith("tagged {") and parse_lines(tagged[7:] + "\n")[0]["status"] == 200
    assert plain == "INFO GET /ok 200"


class _BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


async def test_a_failing_stream_is_reported_and_the_request_still_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A write that fails goes to Handler.handleError (stderr); the response is unaffected."""
    logger = new_logger("tests.logging.pipeline.broken", stream=_BrokenStream())
    try:
        assert isinstance(logger.handlers[0], JsonLinesHandler)
        response = await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope())
        assert response.status == 200
        assert "disk full" in capsys.readouterr().err
    finally:
        logger.handlers.clear()


async def test_non_finite_and_foreign_values_still_give_a_line() -> None:
    """A filter putting NaN or an object on the record degrades those values to strings."""

    def awkward(record: logging.LogRecord) -> bool:
        record.duration_ms = math.inf
        record.extra_object = object()
        return True

    with json_logger() as (logger, stream):
        logger.addFilter(awkward)
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope("/ok"))
        logger.removeFilter(awkward)
    (line,) = records(stream)
    assert line["duration_ms"] == "inf" and "object" in line["extra_object"]
    assert line["status"] == 200 and line["route"] == "/ok"


async def test_logged_headers_and_an_odd_principal_are_encoded() -> None:
    """Logged headers nest under ``headers``; a principal's non-text auth_method is kept as is."""
    odd = Principal(user_id="u", org_id=None, role="r", auth_method=7)  # type: ignore[arg-type]
    with json_logger() as (logger, stream):
        app = LoggingMiddleware(_principal_app(bare_app(), odd), logger=logger, request_headers=["accept"])
        await call_app(app, make_scope(headers=[("accept", "text/plain")]))
    (line,) = records(stream)
    assert line["headers"] == {"accept": "text/plain"}
    assert line["principal"] == {"id": "u", "org_id": None, "role": "r", "auth_method": 7}


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    path=_TEXT,
    query=st.binary(max_size=40),
    agent=st.none() | st.binary(max_size=40),
    client=st.none() | st.text(max_size=20),
    status=st.integers(min_value=100, max_value=599),
    error=st.booleans(),
    org=st.none() | _TEXT,
    role=_TEXT,
    traced=st.booleans(),
    request_id=st.none() | st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True),
)
def test_any_request_gives_one_line_holding_its_fields(
    path: str,
    query: bytes,
    agent: bytes | None,
    client: str | None,
    status: int,
    error: bool,
    org: str | None,
    role: str,
    traced: bool,
    request_id: str | None,
) -> None:
    """Whatever the request holds, the formatted record is one ASCII JSON line with its fields."""
    capture = _Capture()
    with _isolated(logging.getLogger("tests.logging.pipeline.property")) as logger:
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(capture)
        middleware = LoggingMiddleware(bare_app(), logger=logger)
        headers = [("user-agent", agent.decode("latin-1"))] if agent is not None else []
        scope = make_scope(
            "/", headers=headers, query_string=query, client=(client, 1) if client is not None else None
        )
        scope["path"] = path
        if request_id is not None:
            scope["state"] = {"request_id": request_id}
        if role:
            set_principal(scope, Principal(user_id="u", org_id=org, role=role, auth_method="jwt"))
        trace = TRACE if traced else None
        middleware._emit(scope, status, error, 0.0123, 42, trace)
    (record,) = capture.records
    text = JsonLogFormatter("svc").format(record)
    assert text.isascii()
    (line,) = parse_lines(text + "\n")
    expected: dict[str, Any] = middleware._fields(scope, status, error, 0.0123, 42, trace)
    assert {key: line[key] for key in expected} == expected
    assert ("error" in line) is error and line["status"] == status
