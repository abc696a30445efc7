"""The default token estimate: prompt size plus the completion allowance, never an exception."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.ratelimit import estimate_openai_tokens
from asgi_kit.ratelimit.estimate import CHARS_PER_TOKEN

DEFAULT = 100


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("data", "tokens"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 7}, 10 + 7),
        ({"messages": [{"content": [{"type": "text", "text": "abcd" * 3}]}]}, 3 + DEFAULT),
        ({"messages": [], "max_completion_tokens": 9, "max_tokens": 50}, 9),
        ({"prompt": ["abcd", "abcd"], "max_tokens": 1, "n": 3}, 2 + 3),
        ({"prompt": "abcd", "max_tokens": 1, "n": 10_000}, 1 + 1),  # absurd n ignored
        ({"input": "x" * 400, "model": "text-embedding-3-small"}, 100),  # embeddings: input only
        ({"input": "abcd", "instructions": "abcd", "max_output_tokens": 5}, 2 + 5),
        ({"messages": [], "max_tokens": -5}, DEFAULT),
        ({"messages": [], "max_tokens": True}, DEFAULT),
        ({"messages": [{"content": 5}]}, DEFAULT),
    ],
)
def test_estimates(data: Any, tokens: int) -> None:
    """Characters/4 for the prompt, the first allowance given (else the default), times a sane n."""
    assert estimate_openai_tokens(body(data), DEFAULT) == tokens


def test_non_objects_and_empty_bodies() -> None:
    """An empty body costs 0; a body that is not a JSON object costs the default plus its size."""
    assert estimate_openai_tokens(b"", DEFAULT) == 0
    assert estimate_openai_tokens(b"not json at all!", DEFAULT) == DEFAULT + 4
    assert estimate_openai_tokens(b"[1, 2, 3]", DEFAULT) == DEFAULT + 3


def test_deep_nesting_is_bounded() -> None:
    """A hostile, deeply nested content value is not walked past a fixed depth."""
    nested: Any = "abcd"
    for _ in range(50):
        nested = [nested]
    assert estimate_openai_tokens(body({"messages": [{"content": nested}]}), DEFAULT) == DEFAULT


@given(st.binary(max_size=200))
def test_never_raises(raw: bytes) -> None:
    """Any bytes give a non-negative estimate."""
    assert estimate_openai_tokens(raw, DEFAULT) >= 0


def test_a_depth_bomb_is_estimated_by_its_size() -> None:
    """A body nested past the JSON decoder's stack is priced by its size, never an exception."""
    bomb = b"[" * 400_000 + b"]" * 400_000
    assert estimate_openai_tokens(bomb, 10) == 10 + math.ceil(len(bomb) / CHARS_PER_TOKEN)
