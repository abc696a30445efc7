"""Loggers that write to a buffer, and readers that insist every line is one JSON object."""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgi_kit.logging import new_logger

_names = itertools.count()


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as one JSON object; fails on anything else (a forged or split line)."""
    records = []
    for line in text.splitlines():
        value = json.loads(line)
        assert isinstance(value, dict), line
        records.append(value)
    assert text == "" or text.endswith("\n")
    # No character that some tool would treat as a line break survives unescaped.
    for char in ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"):
        assert char not in text
    return records


@contextmanager
def json_logger(level: str = "INFO", **static: Any) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A fresh ``new_logger`` writing to a buffer; its handler is removed afterwards."""
    stream = io.StringIO()
    logger = new_logger(f"tests.logging.{next(_names)}", level, stream=stream, **static)
    try:
        yield logger, stream
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return parse_lines(stream.getvalue())


@contextmanager
def record_factory_adding(name: str, value: Any) -> Iterator[None]:
    """Install a ``LogRecord`` factory that sets ``name`` on every record; restore it afterwards."""
    original = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        setattr(record, name, value)
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(original)
