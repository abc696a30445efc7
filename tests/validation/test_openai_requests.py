"""The OpenAI request schemas: what OpenAI accepts passes; the rest is a 400 naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.errors import ProblemError
from asgi_kit.validation import (
    ChatCompletionRequest,
    RequestLimits,
    validate_chat_completion,
    validate_embeddings,
)

USER = {"role": "user", "content": "hello"}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


def refusal(
    payload: Any, validate: Any = validate_chat_completion, **kwargs: Any
) -> tuple[str | None, str, str]:
    with pytest.raises(ProblemError) as info:
        validate(payload, **kwargs)
    problem = info.value.problem
    assert problem.status == 400
    assert problem.detail
    return problem.extensions.get("param"), problem.extensions.get("code"), problem.detail


@pytest.mark.parametrize(
    "payload",
    [
        chat(),
        chat(temperature=0, top_p=1, n=8, max_tokens=10, presence_penalty=-2, frequency_penalty=2.0),
        chat(temperature=2.0, top_p=0.0, stop="END", user="u-1", seed=-5, logprobs=True, top_logprobs=20),
        chat(stream=True, stream_options={"include_usage": True}, stop=["a", "b", "c", "d"]),
        chat(max_completion_tokens=5, logit_bias={"50256": -100}, metadata={"k": "v"}, store=False),
        chat(
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice="auto",
            parallel_tool_calls=False,
        ),
        chat(
            tool_choice={"type": "function", "function": {"name": "f"}},
            response_format={"type": "json_object"},
        ),
        chat(temperature=None, n=None, stop=None),
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "rules"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                        },
                    ],
                    "name": "ann",
                },
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
            ],
        },
    ],
)
def test_valid_chat_requests_pass(payload: dict[str, Any]) -> None:
    """Requests the official API accepts pass unchanged (exclude_unset keeps what was sent)."""
    request = validate_chat_completion(payload)
    assert isinstance(request, ChatCompletionRequest)
    assert request.model_dump(exclude_unset=True)["model"] == "m"


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ([1, 2], None, "invalid_type"),
        ("a string", None, "invalid_type"),
        (None, None, "invalid_type"),
        ({"messages": [USER]}, "model", "missing_required_parameter"),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        (chat(model=""), "model", "string_below_min_length"),
        (chat(model=7), "model", "invalid_type"),
        (chat(messages=[]), "messages", "array_below_min_length"),
        (chat(messages="hi"), "messages", "invalid_type"),
        (chat(messages=[{"role": "user"}]), "messages[0].content", "missing_required_parameter"),
        (chat(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role", "invalid_value"),
        (chat(messages=[USER, {"role": "user", "content": 42}]), "messages[1].content", "invalid_type"),
        (chat(messages=[{"role": "user", "content": {"text": "x"}}]), "messages[0].content", "invalid_type"),
        (chat(messages=[{"role": "user", "content": []}]), "messages[0].content", "invalid_type"),
        (chat(messages=[{"role": "user", "content": [5]}]), "messages[0].content[0]", "invalid_type"),
        (
            chat(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}]),
            "messages[0].content[0].text",
            "invalid_type",
        ),
        (
            chat(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
            "messages[0].content[0].type",
            "invalid_value",
        ),
        (
            chat(
                messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
            ),
            "messages[0].content[0].type",
            "invalid_value",
        ),
        (
            chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages[0].content[0].image_url.url",
            "missing_required_parameter",
        ),
        (
            chat(messages=[{"role": "tool", "content": "x"}]),
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        (
            chat(messages=[{"role": "function", "content": "x"}]),
            "messages[0].name",
            "missing_required_parameter",
        ),
        (
            chat(messages=[{"role": "user", "content": "x", "extra": 1}]),
            "messages[0].extra",
            "unknown_parameter",
        ),
        (chat(temperature="hot"), "temperature", "invalid_type"),
        (chat(temperature=True), "temperature", "invalid_type"),
        (chat(temperature=2.5), "temperature", "decimal_above_max_value"),
        (chat(temperature=-0.1), "temperature", "decimal_below_min_value"),
        (chat(top_p=1.01), "top_p", "decimal_above_max_value"),
        (chat(n=1000), "n", "integer_above_max_value"),
        (chat(n=9), "n", "integer_above_max_value"),
        (chat(n=0), "n", "integer_below_min_value"),
        (chat(n="2"), "n", "invalid_type"),
        (chat(n=2.0), "n", "invalid_type"),
        (chat(n=True), "n", "invalid_type"),
        (chat(max_tokens=0), "max_tokens", "integer_below_min_value"),
        (chat(max_tokens=10**12), "max_tokens", "integer_above_max_value"),
        (chat(max_tokens=float("inf")), "max_tokens", "invalid_type"),
        (chat(max_completion_tokens=-1), "max_completion_tokens", "integer_below_min_value"),
        (chat(presence_penalty=3), "presence_penalty", "decimal_above_max_value"),
        (chat(frequency_penalty=float("nan")), "frequency_penalty", "invalid_value"),
        (chat(stream="yes"), "stream", "invalid_type"),
        (chat(stream=1), "stream", "invalid_type"),
        (
            chat(stream=True, stream_options={"include_usage": "y"}),
            "stream_options.include_usage",
            "invalid_type",
        ),
        (chat(stream=True, stream_options={"bogus": True}), "stream_options.bogus", "unknown_parameter"),
        (chat(stream_options={"include_usage": True}), "stream_options", "invalid_value"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop", "invalid_type"),
        (chat(stop=[1]), "stop[0]", "invalid_type"),
        (chat(stop=5), "stop", "invalid_type"),
        (chat(logit_bias={"1": 101}), "logit_bias.1", "integer_above_max_value"),
        (chat(top_logprobs=21), "top_logprobs", "integer_above_max_value"),
        (chat(user=["u"]), "user", "invalid_type"),
        (chat(user="u" * 1000), "user", "string_above_max_length"),
        (chat(tool_choice="sometimes"), "tool_choice", "invalid_value"),
        (chat(function_call=3), "function_call", "invalid_value"),
        (chat(tools={"type": "function"}), "tools", "invalid_type"),
        (chat(frobnicate=True), "frobnicate", "unknown_parameter"),
    ],
)
def test_sloppy_chat_requests_are_400_naming_the_parameter(
    payload: Any, param: str | None, code: str
) -> None:
    """Wrong types, out-of-range values, bad message shapes, unknown parameters: 400 with param and code."""
    got_param, got_code, detail = refusal(payload)
    assert (got_param, got_code) == (param, code), detail
    if param is not None:
        assert param in detail


def test_limits_are_configurable() -> None:
    """n, max_tokens and message counts follow RequestLimits."""
    limits = RequestLimits(max_n=2, max_tokens=100, max_messages=1)
    assert refusal(chat(n=3), limits=limits)[0] == "n"
    assert refusal(chat(max_tokens=101), limits=limits)[0] == "max_tokens"
    assert refusal(chat(max_completion_tokens=101), limits=limits)[0] == "max_completion_tokens"
    assert refusal(chat(messages=[USER, USER]), limits=limits)[:2] == ("messages", "array_above_max_length")
    assert validate_chat_completion(chat(n=2, max_tokens=100), limits).n == 2


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_n": 0}, ValueError),
        ({"max_n": 129}, ValueError),
        ({"max_tokens": "1"}, TypeError),
        ({"max_messages": True}, TypeError),
    ],
)
def test_limits_validated(options: dict[str, Any], error: type[Exception]) -> None:
    """RequestLimits refuses bad bounds, naming the option."""
    with pytest.raises(error, match=next(iter(options))):
        RequestLimits(**options)


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "e", "input": "hello"},
        {"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8, "user": "u"},
        {"model": "e", "input": [1, 2, 3]},
        {"model": "e", "input": [[1, 2], [3]]},
    ],
)
def test_valid_embeddings_pass(payload: dict[str, Any]) -> None:
    """Strings, string lists, a token array and token arrays are accepted."""
    assert validate_embeddings(payload).input == payload["input"]


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": "e"}, "input", "missing_required_parameter"),
        ({"model": "e", "input": ""}, "input", "invalid_value"),
        ({"model": "e", "input": []}, "input", "invalid_type"),
        ({"model": "e", "input": 5}, "input", "invalid_type"),
        ({"model": "e", "input": {"text": "x"}}, "input", "invalid_type"),
        ({"model": "e", "input": ["a", ""]}, "input[1]", "invalid_value"),
        ({"model": "e", "input": ["a", 3]}, "input[1]", "invalid_type"),
        ({"model": "e", "input": [1, "a"]}, "input[1]", "invalid_type"),
        ({"model": "e", "input": [1, -2]}, "input[1]", "invalid_type"),
        ({"model": "e", "input": [1, True]}, "input[1]", "invalid_type"),
        ({"model": "e", "input": [[1], []]}, "input[1]", "invalid_type"),
        ({"model": "e", "input": [[1], [2.5]]}, "input[1][0]", "invalid_type"),
        ({"model": "e", "input": [None]}, "input[0]", "invalid_type"),
        ({"model": "e", "input": ["a"] * 2049}, "input", "array_above_max_length"),
        ({"model": "e", "input": "a", "encoding_format": "hex"}, "encoding_format", "invalid_value"),
        ({"model": "e", "input": "a", "dimensions": 0}, "dimensions", "integer_below_min_value"),
        ({"model": "e", "input": "a", "dimensions": 10**6}, "dimensions", "integer_above_max_value"),
        ({"model": "e", "input": "a", "dimensions": "8"}, "dimensions", "invalid_type"),
        ({"model": "e", "input": "a", "extra": 1}, "extra", "unknown_parameter"),
    ],
)
def test_sloppy_embeddings_are_400_naming_the_parameter(payload: Any, param: str, code: str) -> None:
    """Embedding inputs of the wrong shape or bounds: 400 with the parameter's path."""
    got_param, got_code, detail = refusal(payload, validate_embeddings)
    assert (got_param, got_code) == (param, code), detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    ["model", "messages", "temperature", "n", "stop", "stream", "input", "tool_choice", "x"]
)


@given(st.dictionaries(fields, json_values, max_size=5) | json_values)
def test_any_payload_validates_or_is_a_400(payload: Any) -> None:
    """Whatever the JSON, the validators return a request or raise a 400 ProblemError: nothing else."""
    for validate in (validate_chat_completion, validate_embeddings):
        try:
            validate(payload)
        except ProblemError as exc:
            status = exc.problem.status
        else:
            status = 200
        assert status in (200, 400)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["system", "user", "assistant", "developer"]),
                "content": st.text(max_size=20),
            }
        ),
        min_size=1,
        max_size=5,
    ),
    st.floats(min_value=0, max_value=2),
    st.integers(min_value=1, max_value=8),
)
def test_well_formed_chat_always_passes(messages: list[dict[str, Any]], temperature: float, n: int) -> None:
    """Any well-formed chat request within the bounds passes, and dumps back to what was sent."""
    payload = {"model": "m", "messages": messages, "temperature": temperature, "n": n}
    assert validate_chat_completion(payload).model_dump(exclude_unset=True) == payload
