"""A bounded JSON request-body reader: hostile bodies are a clear 400, never a 500.

Python's ``json`` module parses whatever it is given: a 400 KB ``[[[[...`` body makes its C
decoder raise ``RecursionError`` (a 500 and a 40-line traceback in the log), ``1e400`` becomes
``inf``, ``NaN`` and ``Infinity`` are accepted, and a 5,000-digit integer raises an obscure
``ValueError``. :func:`read_json_body` bounds all of it before the app sees a value:

- size: more than ``max_bytes`` is a 413 (``request_too_large``), counted while reading;
- encoding: the body must be UTF-8 (a 400 otherwise);
- depth: arrays and objects nested deeper than ``max_depth`` are a 400, checked by a scan that
  stops as soon as the bound is crossed, before the decoder runs;
- numbers: ``NaN``, ``Infinity``, numbers that overflow to infinity (``1e400``) and integers of
  more than :data:`MAX_INTEGER_DIGITS` digits are a 400 naming where they are
  (``param`` ``messages[0].content``).

Every refusal is a :class:`~asgi_kit.errors.ProblemError` (400 or 413) with the extension members
``param`` and ``code``, so it renders as problem+json or as OpenAI's ``invalid_request_error``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, Final

from asgi_kit._asgi.types import Receive
from asgi_kit.errors import BAD_REQUEST, PAYLOAD_TOO_LARGE, ProblemError

#: The default size bound of :func:`read_json_body`: 1 MiB.
DEFAULT_MAX_BYTES: Final = 1 << 20
#: The default nesting bound: OpenAI's request bodies nest about 6 deep (tools' JSON schemas more).
DEFAULT_MAX_DEPTH: Final = 32
#: Integers longer than this are refused: no API parameter needs one, and converting a
#: 4,300-digit string to an ``int`` is quadratic (CPython caps it at 4,300 for that reason).
MAX_INTEGER_DIGITS: Final = 64

# Strings (skipped whole, so brackets inside them do not count) or structural brackets.
_STRUCTURE: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_NOT_FINITE: Final = object()


class JSONBodyError(ProblemError):
    """A request body refused by :func:`read_json_body` (a 400 or 413 :class:`ProblemError`)."""


def invalid_body(message: str, *, param: str | None = None, code: str | None = None) -> JSONBodyError:
    """A 400 for a body that is not an acceptable JSON document."""
    members = {k: v for k, v in (("param", param), ("code", code)) if v is not None}
    return JSONBodyError(BAD_REQUEST.with_detail(message).with_extensions(**members))


async def read_json_body(
    receive: Receive,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Read the whole request body from ``receive`` and parse it as bounded JSON.

    Args:
        receive: the ASGI ``receive`` of an HTTP request whose body was not read yet.
        max_bytes: the largest body accepted; more is a 413, and nothing past it is kept.
        max_depth: the deepest nesting of arrays and objects accepted.

    Returns:
        The parsed value (any JSON value: check its type).

    Raises:
        JSONBodyError: a 413 when the body is too large, a 400 when it is not bounded, UTF-8
            JSON, or the client disconnected before sending it whole.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError("max_bytes must be an int >= 1")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise invalid_body("The client disconnected before the request body was complete.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise JSONBodyError(
                PAYLOAD_TOO_LARGE.with_extensions(max_body_size=max_bytes, code="request_too_large")
            )
        chunks.append(chunk)
        more = message.get("more_body", False)
    return parse_json_body(b"".join(chunks), max_depth=max_depth)


def parse_json_body(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse ``raw`` as UTF-8 JSON within ``max_depth``, with finite numbers only.

    Raises:
        JSONBodyError: a 400 naming the problem (and the parameter, for a bad number).
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not 1 <= max_depth <= 512:
        raise ValueError("max_depth must be an int between 1 and 512")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_body("The request body is not valid UTF-8.", code="invalid_encoding") from None
    if not text.strip():
        raise invalid_body("The request body is empty: send a JSON object.", code="invalid_json")
    _check_depth(text, max_depth)
    found_bad_number = False

    def finite_float(literal: str) -> Any:
        nonlocal found_bad_number
        value = float(literal)
        if math.isfinite(value):
            return value
        found_bad_number = True
        return _NOT_FINITE

    def bounded_int(literal: str) -> Any:
        nonlocal found_bad_number
        if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
            found_bad_number = True
            return _NOT_FINITE
        return int(literal)

    def no_constant(literal: str) -> Any:
        nonlocal found_bad_number
        found_bad_number = True
        return _NOT_FINITE

    try:
        value = json.loads(text, parse_float=finite_float, parse_int=bounded_int, parse_constant=no_constant)
    except RecursionError:  # unreachable after the depth scan; kept so none can ever escape
        raise _too_deep(max_depth) from None
    except ValueError as exc:
        raise invalid_body(
            f"We could not parse the JSON body of your request: {_reason(exc)}", code="invalid_json"
        ) from None
    if found_bad_number:
        path = next(_paths_of(value, _NOT_FINITE, ""), None)
        raise invalid_body(
            f"Invalid '{path or 'body'}': numbers must be finite and at most {MAX_INTEGER_DIGITS} digits long "
            "(no NaN, Infinity or overflowing exponents).",
            param=path or None,
            code="invalid_value",
        )
    return value


def _check_depth(text: str, max_depth: int) -> None:
    # Cheap test first: a body with fewer brackets than the bound cannot nest past it.
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    top_key: str | None = None  # the member of the top-level object being scanned, for ``param``
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:  # stop here: a bomb costs max_depth steps, not its length
                raise _too_deep(max_depth, top_key)
        elif token in ("]", "}"):
            depth -= 1
        elif depth == 1 and text[match.end() :].lstrip()[:1] == ":":
            top_key = _decode_key(token)


def _decode_key(token: str) -> str | None:
    try:
        key = json.loads(token)
    except ValueError:
        return None
    return key if isinstance(key, str) else None


def _too_deep(max_depth: int, param: str | None = None) -> JSONBodyError:
    return invalid_body(
        f"The JSON body is nested too deeply{f' in {param!r}' if param else ''}: at most {max_depth} levels "
        "of arrays and objects are accepted.",
        param=param,
        code="invalid_json",
    )


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})."
    return "the document is not valid JSON."


def _paths_of(value: Any, target: object, path: str) -> Iterator[str]:
    """Where ``target`` occurs in ``value``, as ``a.b[0].c`` paths (depth is already bounded)."""
    if value is target:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_of(item, target, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_of(item, target, f"{path}[{index}]")


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_INTEGER_DIGITS",
    "JSONBodyError",
    "invalid_body",
    "parse_json_body",
    "read_json_body",
]
