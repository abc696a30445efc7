"""The bounded JSON reader: hostile bodies are a 400 (or 413) problem, never an exception or a 500."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.errors import ProblemError
from asgi_kit.testing import StrictReceive
from asgi_kit.validation import (
    DEFAULT_MAX_DEPTH,
    MAX_INTEGER_DIGITS,
    JSONBodyError,
    parse_json_body,
    read_json_body,
)

BOMB = b"[" * 400_000


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        (BOMB, None, "invalid_json"),
        (b'{"model": "m", "messages": ' + BOMB, "messages", "invalid_json"),
        (b'{"a": ' + b"{" * 200_000, "a", "invalid_json"),
        (b'{"max_tokens": 1e400}', "max_tokens", "invalid_value"),
        (b'{"temperature": -1e999}', "temperature", "invalid_value"),
        (b'{"temperature": NaN}', "temperature", "invalid_value"),
        (b'{"a": {"b": [1, Infinity]}}', "a.b[1]", "invalid_value"),
        (b'{"n": -Infinity}', "n", "invalid_value"),
        (b'{"seed": ' + b"9" * (MAX_INTEGER_DIGITS + 1) + b"}", "seed", "invalid_value"),
        (b'{"seed": ' + b"9" * 5000 + b"}", "seed", "invalid_value"),
        (b'{"model": "\xff\xfe"}', None, "invalid_encoding"),
        (b"\xed\xa0\x80", None, "invalid_encoding"),  # a UTF-8-encoded surrogate
        (b"", None, "invalid_json"),
        (b"   ", None, "invalid_json"),
        (b"{not json", None, "invalid_json"),
        (b'{"a": 1,}', None, "invalid_json"),
        (b'{"a": "unterminated', None, "invalid_json"),
    ],
)
def test_hostile_bodies_are_400(raw: bytes, param: str | None, code: str) -> None:
    """Depth bombs, non-finite or huge numbers, bad UTF-8 and broken JSON: a 400 naming where, quickly."""
    began = time.perf_counter()
    with pytest.raises(JSONBodyError) as info:
        parse_json_body(raw)
    assert time.perf_counter() - began < 0.5
    problem = info.value.problem
    assert problem.status == 400
    assert problem.extensions.get("param") == param
    assert problem.extensions["code"] == code
    assert problem.detail


def test_depth_bound_is_exact() -> None:
    """max_depth levels parse; one more is refused."""
    deep = b"[" * DEFAULT_MAX_DEPTH + b"]" * DEFAULT_MAX_DEPTH
    assert parse_json_body(deep) is not None
    with pytest.raises(JSONBodyError):
        parse_json_body(b"[" + deep + b"]")
    # Brackets inside strings are text, not nesting.
    text = json.dumps({"a": "[" * 1000 + "{" * 1000}).encode()
    assert parse_json_body(text) == {"a": "[" * 1000 + "{" * 1000}


def test_escaped_quotes_do_not_hide_nesting() -> None:
    """An escaped quote inside a string does not end it: the depth scan stays in step."""
    raw = ('{"k": "a\\"[[[[", "v": ' + "[" * 40 + "]" * 40 + "}").encode()
    with pytest.raises(JSONBodyError) as info:
        parse_json_body(raw)
    assert info.value.problem.extensions["param"] == "v"


@pytest.mark.parametrize("bad", [0, -1, 513, True, 2.0])
def test_options_checked(bad: Any) -> None:
    """max_depth and max_bytes are validated."""
    with pytest.raises(ValueError, match="max_depth"):
        parse_json_body(b"{}", max_depth=bad)


async def test_reader_size_bound_is_413() -> None:
    """A body over max_bytes is a 413 request_too_large, counted across chunks."""
    with pytest.raises(JSONBodyError) as info:
        await read_json_body(StrictReceive([b'{"a": "', b"x" * 10, b'"}']), max_bytes=12)
    assert info.value.problem.status == 413
    assert info.value.problem.extensions["code"] == "request_too_large"
    with pytest.raises(ValueError, match="max_bytes"):
        await read_json_body(StrictReceive([b"{}"]), max_bytes=0)


async def test_reader_reads_chunks_and_disconnect() -> None:
    """Chunks are joined; a disconnect before the end is a 400."""
    assert await read_json_body(StrictReceive([b'{"a"', b": [1, 2.5]}"])) == {"a": [1, 2.5]}
    receive = StrictReceive([b'{"a"', b": 1}"])
    receive._messages[-1]["more_body"] = True  # the client never finishes its body
    receive.disconnect()
    with pytest.raises(ProblemError) as info:
        await read_json_body(receive)
    assert info.value.problem.status == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_round_trip_of_bounded_json(value: Any) -> None:
    """Any finite JSON value within the depth bound parses to itself."""
    assert parse_json_body(json.dumps(value).encode()) == value


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape(raw: bytes) -> None:
    """Whatever the bytes, the reader returns a value or raises a 400 problem: nothing else."""
    parsed, value = _outcome(raw)
    if parsed:
        assert value == json.loads(raw)
    else:
        assert value.status == 400


@given(st.text(alphabet='[]{}",:1\\ a', max_size=400))
def test_structural_soup_never_escapes(text: str) -> None:
    """Random brackets, quotes and escapes: a value or a 400, and any value is finite and bounded."""
    parsed, value = _outcome(text.encode())
    if parsed:
        assert _depth(value) <= DEFAULT_MAX_DEPTH
    else:
        assert value.status == 400


@given(st.integers(min_value=1, max_value=200))
def test_nesting_refused_exactly_past_the_bound(depth: int) -> None:
    """Nesting up to the bound parses, past it is a 400, whatever the depth."""
    raw = ("[" * depth + "]" * depth).encode()
    if depth <= DEFAULT_MAX_DEPTH:
        assert _depth(parse_json_body(raw)) == depth
    else:
        with pytest.raises(JSONBodyError):
            parse_json_body(raw)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_finite_or_refused(number: float) -> None:
    """A float literal parses to a finite float or is refused naming its member."""
    raw = json.dumps({"x": number}).encode()
    if math.isfinite(number):
        assert parse_json_body(raw) == {"x": number}
    else:
        with pytest.raises(JSONBodyError) as info:
            parse_json_body(raw)
        assert info.value.problem.extensions["param"] == "x"


def _outcome(raw: bytes) -> tuple[bool, Any]:
    """``(True, value)`` when the body parses, ``(False, problem)`` when it is refused."""
    try:
        return True, parse_json_body(raw)
    except JSONBodyError as exc:
        return False, exc.problem


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0
