"""LoggingMiddleware writes the line itself only when nothing else could see the record."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit._asgi.context import TraceIds, trace_ids_var
from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.logging import JsonLogFormatter, LoggingMiddleware, new_logger
from asgi_kit.logging import middleware as middleware_module
from asgi_kit.logging.logger import JsonLinesHandler
from asgi_kit.testing import call_app, make_scope
from tests.harness.apps import bare_app
from tests.logging.helpers import json_logger, parse_lines, record_factory_adding


def _principal_app(app: ASGIApp) -> ASGIApp:
    async def with_principal(scope: Scope, receive: Receive, send: Send) -> None:
        set_principal(scope, Principal(user_id="u-1", org_id="o-1", role="org_admin", auth_method="jwt"))
        token = trace_ids_var.set(TraceIds("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "x"))
        try:
            await app(scope, receive, send)
        finally:
            trace_ids_var.reset(token)

    return with_principal


def _scope() -> Scope:
    return make_scope(
        "/items/7",
        query_string=b"verbose=1&token=s3cr3t",
        headers=[("User-Agent", "curl/8.5 \x85x"), ("x-request-id", "abc")],
        client=("203.0.113.9", 4000),
    )


@contextmanager
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The same ``time.time()`` and duration for every request, so two lines can be compared."""
    monkeypatch.setattr(middleware_module.time, "time", lambda: 1_790_000_000.123456)
    monkeypatch.setattr(middleware_module, "perf_counter", lambda: 5.0)
    yield


def _record_path_taken(logger: logging.Logger) -> list[str]:
    """Patch the logger's handle() to note when the record path is used."""
    used: list[str] = []
    original = logger.handle

    def handle(record: logging.LogRecord) -> None:
        used.append("record")
        original(record)

    logger.handle = handle  # type: ignore[method-assign]
    return used


async def test_a_new_logger_gets_the_line_written_directly_and_identically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Direct write and the LogRecord path produce byte-identical lines, static fields included."""
    app = _principal_app(bare_app())
    with _fixed_clock(monkeypatch), json_logger(environment="prod") as (logger, stream):
        used = _record_path_taken(logger)
        await call_app(LoggingMiddleware(app, logger=logger, message="GET done"), _scope())
        direct = stream.getvalue()
        assert used == []  # nothing built a LogRecord
        logger.addFilter(lambda record: True)  # anything that could see a record: the record path
        await call_app(LoggingMiddleware(app, logger=logger, message="GET done"), _scope())
        assert used == ["record"]
    first, second = direct, stream.getvalue()[len(direct) :]
    assert first == second
    (line,) = parse_lines(first)
    assert line["message"] == "GET done" and line["environment"] == "prod"
    assert line["principal"]["id"] == "u-1" and line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "s3cr3t" not in first


def _add_filter(logger: logging.Logger) -> None:
    logger.addFilter(lambda record: True)


def _second_handler(logger: logging.Logger) -> None:
    logger.addHandler(logging.NullHandler())


def _handler_filter(logger: logging.Logger) -> None:
    logger.handlers[0].addFilter(lambda record: True)


def _propagate(logger: logging.Logger) -> None:
    logger.propagate = True


def _subclassed_formatter(logger: logging.Logger) -> None:
    class Custom(JsonLogFormatter):
        pass

    logger.handlers[0].setFormatter(Custom("svc"))


def _plain_stream_handler(logger: logging.Logger) -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonLogFormatter("svc"))
    logger.handlers[:] = [handler]


@pytest.mark.parametrize(
    "change",
    [_add_filter, _second_handler, _handler_filter, _propagate, _subclassed_formatter, _plain_stream_handler],
)
async def test_anything_that_could_see_the_record_gets_one(change: Callable[[logging.Logger], None]) -> None:
    """Filters, other handlers, propagation, custom formatters or handlers: the LogRecord path."""
    with json_logger() as (logger, _):
        change(logger)
        used = _record_path_taken(logger)
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope())
        assert used == ["record"]


async def test_a_custom_record_factory_is_honoured() -> None:
    """A record factory adds its attributes: the direct path steps aside for it."""
    with record_factory_adding("deployment", "blue"), json_logger() as (logger, stream):
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope())
    (line,) = parse_lines(stream.getvalue())
    assert line["deployment"] == "blue"


async def test_a_handler_level_above_the_record_drops_it() -> None:
    """The handler's own level still decides, as Handler.handle callers check it."""
    with json_logger() as (logger, stream):
        logger.handlers[0].setLevel(logging.ERROR)
        await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope())
    assert stream.getvalue() == ""


class _BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


async def test_a_failing_stream_is_reported_and_the_request_still_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A write that fails goes to Handler.handleError (stderr); the response is unaffected."""
    logger = new_logger("tests.logging.direct.broken", stream=_BrokenStream())
    try:
        assert isinstance(logger.handlers[0], JsonLinesHandler)
        response = await call_app(LoggingMiddleware(bare_app(), logger=logger), make_scope())
        assert response.status == 200
        assert "disk full" in capsys.readouterr().err
    finally:
        logger.handlers.clear()


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
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
def test_the_straight_line_encoder_writes_what_the_formatter_writes(
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
    """For every record the layer can build, the direct encoding equals the generic one."""
    formatter = JsonLogFormatter("svc")
    logger = logging.getLogger("tests.logging.direct.property")
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
    trace = TraceIds("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "x") if traced else None
    fields = middleware._fields(scope, status, error, 0.0123, 42, trace)
    encoded = middleware._encode(fields)
    assert encoded is not None
    assert encoded == formatter._encode(fields)[1:]


async def test_fields_the_straight_line_encoder_does_not_know_take_the_formatters_way() -> None:
    """Logged headers, or a principal whose auth_method is not text, still give a full line."""
    with json_logger() as (logger, stream):
        app = LoggingMiddleware(bare_app(), logger=logger, request_headers=["accept"])
        await call_app(app, make_scope(headers=[("accept", "text/plain")]))
        assert (
            app._encode(app._fields(make_scope(headers=[("accept", "x")]), 200, False, 0.1, 1, None)) is None
        )

        async def odd_principal(scope: Scope, receive: Receive, send: Send) -> None:
            set_principal(scope, Principal(user_id="u", org_id=None, role="r", auth_method=7))  # type: ignore[arg-type]
            await bare_app()(scope, receive, send)

        await call_app(LoggingMiddleware(odd_principal, logger=logger), make_scope())
    first, second = parse_lines(stream.getvalue())
    assert first["headers"] == {"accept": "text/plain"}
    assert second["principal"]["auth_method"] == 7
