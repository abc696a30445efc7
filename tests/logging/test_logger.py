"""new_logger: JSON lines with the request context; URL passwords masked; no side effects."""

from __future__ import annotations

import io
import logging
import math
import subprocess
import sys
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.context import TraceIds, trace_ids_var, with_request_id
from asgi_kit.logging import (
    JsonLogFormatter,
    RequestContextFilter,
    get_request_id,
    new_logger,
    redact_url_credentials,
)
from asgi_kit.logging.logger import CORE_FIELDS, JsonLinesHandler, resolve_level
from tests.logging.helpers import json_logger, parse_lines, records

TRACE = TraceIds(
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7", traceparent="00-x-y-01"
)


def test_line_has_the_core_fields_in_order() -> None:
    """Each line starts with timestamp (RFC 3339 UTC), level, service, logger, message."""
    with json_logger(environment="test") as (logger, stream):
        logger.info("hello %s", "world", extra={"user": "u1"})
    (line,) = records(stream)
    assert list(line)[:5] == list(CORE_FIELDS)
    assert line["level"] == "INFO"
    assert line["message"] == "hello world"
    assert line["service"] == logger.name
    assert line["logger"] == logger.name
    assert line["environment"] == "test"
    assert line["user"] == "u1"
    assert line["timestamp"].endswith("Z") and line["timestamp"][10] == "T"
    assert "request_id" not in line and "trace_id" not in line


def test_timestamp_is_utc_with_milliseconds() -> None:
    """The timestamp is the record's creation time in UTC, to the millisecond."""
    formatter = JsonLogFormatter("svc")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    record.created = 86400 * 365 + 0.25
    assert parse_lines(formatter.format(record) + "\n")[0]["timestamp"] == "1971-01-01T00:00:00.250Z"
    record.created += 1
    assert parse_lines(formatter.format(record) + "\n")[0]["timestamp"] == "1971-01-01T00:00:01.250Z"


def test_request_and_trace_ids_are_added_inside_a_request() -> None:
    """Records emitted under a request id and a trace carry request_id, trace_id and span_id."""
    with json_logger() as (logger, stream):
        token = trace_ids_var.set(TRACE)
        try:
            with with_request_id("rid-1"):
                assert get_request_id() == "rid-1"
                logger.warning("inside")
        finally:
            trace_ids_var.reset(token)
        logger.warning("outside")
    inside, outside = records(stream)
    assert (inside["request_id"], inside["trace_id"], inside["span_id"]) == (
        "rid-1",
        TRACE.trace_id,
        TRACE.span_id,
    )
    assert not {"request_id", "trace_id", "span_id"} & set(outside)


def test_explicit_request_id_wins() -> None:
    """A request_id passed with extra= is kept rather than overwritten from the contextvar."""
    with json_logger() as (logger, stream), with_request_id("ctx"):
        logger.info("x", extra={"request_id": "explicit"})
    assert records(stream)[0]["request_id"] == "explicit"


def test_propagated_library_records_carry_the_context() -> None:
    """A library logger propagating to the configured one gets the ids too (handler, not logger, filter)."""
    with json_logger() as (logger, stream):
        library = logging.getLogger(f"{logger.name}.library")
        with with_request_id("lib-rid"):
            library.error("from a library")
    assert records(stream)[0]["request_id"] == "lib-rid"
    assert records(stream)[0]["logger"] == library.name


def test_records_from_another_thread_of_the_request_carry_the_context() -> None:
    """Records from a thread started with the request's context (as to_thread does) carry its id."""
    import contextvars

    with json_logger() as (logger, stream), with_request_id("thread-rid"):
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(logger.info, "in thread"))
        thread.start()
        thread.join(5)
    assert records(stream)[0]["request_id"] == "thread-rid"


def test_url_passwords_are_masked_in_messages_and_tracebacks() -> None:
    """A DSN password never reaches the log, in the message, its arguments or the traceback."""
    with json_logger() as (logger, stream):
        logger.info("connecting to %s", "postgresql://app:hunter2@db:5432/prod")
        try:
            raise ConnectionError("could not reach postgresql://app:hunter2@db/prod")
        except ConnectionError:
            logger.exception("failed")
    text = stream.getvalue()
    assert "hunter2" not in text
    first, second = records(stream)
    assert first["message"] == "connecting to postgresql://app:REDACTED@db:5432/prod"
    assert "postgresql://app:REDACTED@db/prod" in second["exc_info"]


def test_exc_text_is_redacted_and_not_polluted() -> None:
    """A record whose traceback was already rendered by another handler is redacted for us only."""
    formatter = JsonLogFormatter("svc")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "m", (), None)
    record.exc_text = "Traceback: redis://:pw@cache:6379"
    line = parse_lines(formatter.format(record) + "\n")[0]
    assert line["exc_info"] == "Traceback: redis://:REDACTED@cache:6379"
    assert record.exc_text == "Traceback: redis://:pw@cache:6379"


def test_control_characters_cannot_split_a_line() -> None:
    """Messages and extras holding CR, LF, U+2028 or escapes stay on one JSON line."""
    with json_logger() as (logger, stream):
        logger.info('evil\n{"level": "CRITICAL"}\r\u2028\x1b[2J', extra={"field": "a\nb\u2029"})
    (line,) = records(stream)
    assert line["message"].startswith("evil\n")
    assert stream.getvalue().count("\n") == 1


def test_extras_cannot_overwrite_core_fields() -> None:
    """An extra named like a core field never replaces it."""
    with json_logger() as (logger, stream):
        logger.info("real", extra={"level": "FAKE", "service": "other", "timestamp": "never"})
    (line,) = records(stream)
    assert line["level"] == "INFO" and line["service"] == logger.name and line["timestamp"] != "never"


def test_awkward_values_still_give_one_json_line() -> None:
    """NaN, cycles, sets and arbitrary objects never break a line or raise."""
    cycle: list[Any] = []
    cycle.append(cycle)
    with json_logger() as (logger, stream):
        logger.info("nan", extra={"v": math.nan, "inf": math.inf})
        logger.info("cycle", extra={"v": cycle})
        logger.info("objects", extra={"v": {1, 2}, "o": object(), "b": b"\x00\xff"})
        logger.info("stack", stack_info=True)
    nan, cyc, objects, stack = records(stream)
    assert nan["v"] == "nan" and nan["inf"] == "inf"
    assert isinstance(cyc["v"], str)
    assert "object" in objects["o"]
    assert "test_logger" in stack["stack_info"]


def test_new_logger_is_idempotent() -> None:
    """Calling new_logger twice with one name keeps one handler and applies the new settings."""
    first, second = io.StringIO(), io.StringIO()
    logger = new_logger("tests.logging.idempotent", stream=first, version="1")
    try:
        again = new_logger("tests.logging.idempotent", "DEBUG", stream=second, version="2")
        assert again is logger
        assert len(logger.handlers) == 1
        assert logger.level == logging.DEBUG and logger.propagate is False
        logger.debug("x")
        assert first.getvalue() == ""
        assert records(second)[0]["version"] == "2"
        new_logger("tests.logging.idempotent", "INFO")  # no stream: keeps the current one
        logger.info("y")
        assert len(records(second)) == 2
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def test_new_logger_keeps_foreign_handlers() -> None:
    """A handler the user added to that logger is left alone."""
    logger = logging.getLogger("tests.logging.foreign")
    foreign = logging.NullHandler()
    logger.addHandler(foreign)
    try:
        new_logger("tests.logging.foreign", stream=io.StringIO())
        assert foreign in logger.handlers and len(logger.handlers) == 2
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def test_root_logger_configuration() -> None:
    """logger_name="" configures the root logger, so every library's records become JSON lines."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    try:
        assert new_logger("svc", logger_name="", stream=stream) is root
        with with_request_id("root-rid"):
            logging.getLogger("some.library").warning("hello")
        (line,) = records(stream)
        assert (line["service"], line["logger"], line["request_id"]) == ("svc", "some.library", "root-rid")
    finally:
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])


def test_default_stream_is_stderr() -> None:
    """Without a stream, lines go to sys.stderr (looked up when called)."""
    logger = new_logger("tests.logging.stderr")
    try:
        handler = logger.handlers[0]
        assert isinstance(handler, JsonLinesHandler) and handler.stream is sys.stderr
    finally:
        logger.removeHandler(logger.handlers[0])


def test_context_filter_for_other_formatters() -> None:
    """RequestContextFilter puts the ids on records for a plain-text handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(logging.Formatter("%(request_id)s %(trace_id)s %(message)s"))
    logger = logging.getLogger("tests.logging.plain")
    logger.addHandler(handler)
    logger.propagate = False
    token = trace_ids_var.set(TRACE)
    try:
        with with_request_id("plain-rid"):
            logger.warning("m")
    finally:
        trace_ids_var.reset(token)
        logger.removeHandler(handler)
    assert stream.getvalue() == f"plain-rid {TRACE.trace_id} m\n"


def test_failing_stream_goes_to_handle_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that raises is reported by logging's handleError, never raised to the caller."""
    monkeypatch.setattr(logging, "raiseExceptions", False)

    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk full")

    logger = new_logger("tests.logging.broken", stream=Broken())
    try:
        logger.error("lost")
    finally:
        logger.removeHandler(logger.handlers[0])


def test_options_are_validated() -> None:
    """Bad arguments raise errors naming the problem."""
    with pytest.raises(ValueError, match="service"):
        new_logger("")
    with pytest.raises(ValueError, match="level"):
        new_logger("svc-bad-level", "LOUD")
    with pytest.raises(TypeError, match="level"):
        new_logger("svc-bad-level", True)
    with pytest.raises(TypeError, match="level"):
        new_logger("svc-bad-level", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="static_fields"):
        new_logger("svc-bad-static", level="INFO", message="x")
    with pytest.raises(TypeError, match="stream"):
        new_logger("svc-bad-stream", stream=object())  # type: ignore[arg-type]
    assert resolve_level("debug") == logging.DEBUG
    assert resolve_level(5) == 5


def test_import_installs_no_handlers() -> None:
    """Importing the package configures nothing: no handler anywhere, root level untouched."""
    code = (
        "import logging; import asgi_kit.logging; "
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers; "
        "assert logging.getLogger().level == logging.WARNING; "
        "assert all(not getattr(l, 'handlers', None) for l in logging.Logger.manager.loggerDict.values())"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_extra_names_the_pip_install() -> None:
    """Without python-json-logger, importing asgi_kit.logging says which extra to install."""
    code = "import sys; sys.modules['pythonjsonlogger'] = None; import asgi_kit.logging"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "pip install 'asgi-kit[logging]'" in result.stderr


def test_public_names() -> None:
    """__all__ is exactly the public surface."""
    import asgi_kit.logging as package

    assert sorted(package.__all__) == sorted(
        [
            "JsonLogFormatter",
            "LoggingMiddleware",
            "RequestContextFilter",
            "RequestIDMiddleware",
            "get_request_id",
            "is_valid_request_id",
            "new_logger",
            "new_request_id",
            "redact_url_credentials",
            "with_request_id",
        ]
    )


def test_dict_message_becomes_fields() -> None:
    """log.info({...}) logs the dict's items as fields with an empty message, as python-json-logger does."""
    with json_logger() as (logger, stream), with_request_id("d-1"):
        logger.info({"event": "signup", "plan": "pro", "level": "FAKE"}, extra={"plan": "extra-wins"})
    (line,) = records(stream)
    assert (line["message"], line["event"], line["plan"], line["level"]) == (
        "",
        "signup",
        "extra-wins",
        "INFO",
    )
    assert line["request_id"] == "d-1"


def test_extra_overrides_static_field() -> None:
    """An extra= field named like a static field replaces it, in one well-formed line."""
    with json_logger(region="static") as (logger, stream):
        logger.info("a", extra={"region": "extra"})
        logger.info("b")
    first, second = records(stream)
    assert first["region"] == "extra" and second["region"] == "static"
    assert list(second) == [*CORE_FIELDS, "region"]


def test_static_fields_are_validated_by_the_formatter() -> None:
    """JsonLogFormatter itself refuses static fields that would redefine core or context fields."""
    with pytest.raises(ValueError, match="request_id"):
        JsonLogFormatter("svc", {"request_id": "x"})


@given(
    st.text(max_size=50),
    st.text(max_size=20),
    st.dictionaries(st.from_regex(r"[a-j][a-j_]{0,7}", fullmatch=True), st.text(max_size=20), max_size=4),
    st.dictionaries(st.sampled_from(["env", "zone"]), st.text(max_size=10), max_size=2),
)
def test_line_round_trips(message: str, name: str, extra: dict[str, str], static: dict[str, str]) -> None:
    """Any message, logger name, extras and static fields come back from the line exactly."""
    formatter = JsonLogFormatter("svc\n\u2028", static)
    record = logging.LogRecord(name or "root", logging.INFO, __file__, 1, "%s", (message,), None)
    extra = {k: v for k, v in extra.items() if k not in record.__dict__ and k not in CORE_FIELDS}
    record.__dict__.update(extra)
    (line,) = parse_lines(formatter.format(record) + "\n")
    expected_message = redact_url_credentials(message)
    assert (line["message"], line["logger"], line["service"]) == (
        expected_message,
        name or "root",
        "svc\n\u2028",
    )
    assert line == {**line, **static, **extra}
    assert list(line)[:5] == list(CORE_FIELDS)
