"""JSON-lines logging that knows which request it is in.

:func:`new_logger` returns a logger with its own handler writing one JSON object per line
(python-json-logger). Every record it formats, whoever emitted it (the kit, the app, a library
propagating to it), carries ``request_id``, ``trace_id`` and ``span_id`` when emitted inside a
request, read from the contextvars of :mod:`asgi_kit._asgi.context`. Passwords in URLs
(``postgresql://u:PASSWORD@h/db``) are masked in messages and tracebacks.

Nothing here touches the logging configuration on import: only calling :func:`new_logger`
installs a handler, on the logger it names.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder, JsonFormatter

from asgi_kit._asgi.context import request_id_var, trace_ids_var
from asgi_kit._asgi.options import check_str
from asgi_kit.logging.redaction import redact_url_credentials

#: The fields every line starts with, in this order.
CORE_FIELDS: Final = ("timestamp", "level", "service", "logger", "message")

# LogRecord's own attributes never become JSON fields; everything passed with ``extra=`` does,
# except names of the core fields, which an ``extra=`` can never overwrite.
_SKIP: Final = frozenset(RESERVED_ATTRS) | {"asctime", "taskName", *CORE_FIELDS}

# ".000Z" to ".999Z": the end of a timestamp is a lookup, not a format call.
_MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))

# Marks the handler new_logger installed, so a second call reconfigures it instead of adding one.
_HANDLER_MARK: Final = "_asgi_kit_json_handler"


class RequestContextFilter(logging.Filter):
    """Copy the current ``request_id``, ``trace_id`` and ``span_id`` onto each record.

    For handlers that do not use :class:`JsonLogFormatter` (which does this itself). Attach it to
    a *handler*, not a logger: handler filters also see records propagated from other loggers.
    Values already on the record (passed with ``extra=``) are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        add_request_context(record.__dict__)
        return True


def add_request_context(fields: dict[str, Any]) -> None:
    """Add the current request and trace ids to ``fields`` unless already there."""
    if "request_id" not in fields:
        request_id = request_id_var.get()
        if request_id is not None:
            fields["request_id"] = request_id
    if "trace_id" not in fields:
        trace = trace_ids_var.get()
        if trace is not None:
            fields["trace_id"] = trace.trace_id
            fields["span_id"] = trace.span_id


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record: ``timestamp`` (RFC 3339, UTC), ``level``, ``service``,
    ``logger``, ``message``, the static fields, the record's ``extra=`` fields, the request
    context, then ``exc_info``/``stack_info``.

    A python-json-logger ``JsonFormatter`` (its reserved attributes, static fields and encoder
    for dates, exceptions and other objects) whose ``format`` is written for the access log,
    which formats one record per request: no format-string parsing, a timestamp string cached
    per second, the same encoder for every record, and the fields that repeat (level, service,
    logger, a short message, the static fields) encoded once. ``ensure_ascii`` is on, so U+2028
    and friends are escaped and a line can never be split, whatever a field holds.

    Args:
        service: the ``service`` field of every line.
        static_fields: more fields added to every line (``environment``, ``version`` ...).
    """

    def __init__(self, service: str = "", static_fields: Mapping[str, Any] | None = None) -> None:
        static = dict(static_fields or {})
        clashing = sorted(set(static) & {*CORE_FIELDS, "request_id", "trace_id", "span_id"})
        if clashing:
            raise ValueError(f"static_fields must not redefine core fields: {', '.join(clashing)}")
        super().__init__(static_fields=static, json_ensure_ascii=True)
        self.service = service
        # NaN and infinities are refused (they are not JSON) and take the fallback in _encode.
        self._encoder = JsonEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        self._second = (-1, "")
        self._service_json = self._encoder.encode(service)
        self._static_keys = frozenset(static)
        self._static_json = "," + self._encode(static)[1:-1] if static else ""
        # The encoded level/service/logger/message of recent short messages: for the access log
        # these never change. Bounded, and cleared rather than grown.
        self._heads: dict[tuple[str, str, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "://" in message:
            message = redact_url_credentials(message)
        rest = {key: value for key, value in record.__dict__.items() if key not in _SKIP and key[:1] != "_"}
        if type(record.msg) is dict:
            # python-json-logger's convention: log.info({"event": "x"}) logs those fields and
            # an empty message. They go first, as there, and core fields stay core.
            message = ""
            rest = {**{k: v for k, v in record.msg.items() if k not in _SKIP}, **rest}
        add_request_context(rest)
        if record.exc_info:
            # Formatted here rather than cached on record.exc_text: that cache is shared with
            # other handlers, which must not see our redaction (nor we theirs).
            rest["exc_info"] = redact_url_credentials(
                logging.Formatter.formatException(self, record.exc_info)
            )
        elif record.exc_text:
            rest["exc_info"] = redact_url_credentials(record.exc_text)
        if record.stack_info:
            rest["stack_info"] = logging.Formatter.formatStack(self, record.stack_info)
        timestamp = self._timestamp(record.created)
        if self._static_keys and not self._static_keys.isdisjoint(rest):
            # An extra= field overrides a static one of the same name: one dict, one encoding.
            core = {"timestamp": timestamp, "level": record.levelname, "service": self.service}
            core.update(logger=record.name, message=message, **self.static_fields)
            core.update(rest)
            return self._encode(core)
        head = self._head(record.levelname, record.name, message)
        if not rest:
            return f'{{"timestamp":"{timestamp}",{head}}}'
        # The encoded rest without its opening brace, spliced after the head: the same line,
        # order and escaping as encoding one dict holding everything.
        return f'{{"timestamp":"{timestamp}",{head},{self._encode(rest)[1:]}'

    def _head(self, level: str, logger: str, message: str) -> str:
        key = (level, logger, message)
        head = self._heads.get(key)
        if head is None:
            encode = self._encoder.encode
            head = (
                f'"level":{encode(level)},"service":{self._service_json},'
                f'"logger":{encode(logger)},"message":{encode(message)}{self._static_json}'
            )
            if len(message) <= 64:  # constant messages (the access log's) repeat; others are not kept
                if len(self._heads) >= 256:
                    self._heads.clear()
                self._heads[key] = head
        return head

    def _encode(self, data: dict[str, Any]) -> str:
        try:
            return self._encoder.encode(data)
        except (ValueError, TypeError, RecursionError):
            # A cycle or a NaN somewhere in an extra: keep the line, lose that value's structure.
            return self._encoder.encode({key: _json_scalar(value) for key, value in data.items()})

    def _timestamp(self, created: float) -> str:
        seconds = int(created)
        cached_second, prefix = self._second
        if seconds != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            # One tuple assignment, so a thread switch never pairs a second with another's prefix.
            self._second = (seconds, prefix)
        return prefix + _MILLIS[int((created - seconds) * 1000)]


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` that writes each formatted record and flushes under one lock.

    ``StreamHandler.emit`` takes the handler lock a second time to flush; ``Handler.handle``
    already holds it, and the access log pays for every lock once per request.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _json_scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return value
    return str(value)


def new_logger(
    service: str,
    level: int | str = "INFO",
    *,
    stream: IO[str] | None = None,
    logger_name: str | None = None,
    **static_fields: Any,
) -> logging.Logger:
    """A logger writing JSON lines for ``service``.

    The logger (named ``service`` unless ``logger_name`` says otherwise) gets one handler of its
    own writing to ``stream`` (``sys.stderr`` by default) and ``propagate=False``, so its lines are
    not printed twice by the root logger. Calling it again with the same name reconfigures that
    handler rather than adding a second one.

    Pass ``logger_name=""`` to configure the root logger instead: then the records of every
    library (and the kit's own ``asgi_kit.*`` loggers) come out as JSON lines with the request
    context too.

    Args:
        service: the ``service`` field of every line; must be non-empty.
        level: the logger's level, a name (``"INFO"``) or a number.
        stream: a text stream with ``write``; ``sys.stderr`` when ``None``.
        logger_name: the logger to configure; ``service`` when ``None``, the root logger for ``""``.
        **static_fields: fields added to every line (``environment="prod"``, ``version="1.2"``).

    Raises:
        ValueError: an empty ``service``, an unknown ``level``, or a static field that would
            overwrite a core field.
    """
    check_str("service", service)
    numeric_level = resolve_level(level)
    formatter = JsonLogFormatter(service, static_fields)  # validates the static fields
    if stream is not None and not callable(getattr(stream, "write", None)):
        raise TypeError("stream must be a text stream with a write() method")

    # getLogger("") is the root logger.
    logger = logging.getLogger(service if logger_name is None else logger_name)
    logger.setLevel(numeric_level)
    handler = next((h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if not isinstance(handler, logging.StreamHandler):
        handler = JsonLinesHandler(stream if stream is not None else sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    elif stream is not None:
        handler.setStream(stream)
    handler.setFormatter(formatter)
    if not isinstance(logger, logging.RootLogger):
        logger.propagate = False
    return logger


def resolve_level(level: int | str) -> int:
    """A logging level as a number, from a number or a name (``"info"`` too)."""
    if isinstance(level, bool):
        raise TypeError("level must be a level name or number")
    if isinstance(level, int):
        return level
    if isinstance(level, str):
        number = logging.getLevelNamesMapping().get(level.upper())
        if number is not None:
            return number
        raise ValueError(f"level {level!r} is not a logging level name")
    raise TypeError("level must be a level name or number")


__all__ = [
    "CORE_FIELDS",
    "JsonLinesHandler",
    "JsonLogFormatter",
    "RequestContextFilter",
    "add_request_context",
    "new_logger",
    "resolve_level",
]
