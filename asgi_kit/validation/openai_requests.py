"""Request schemas of the OpenAI-compatible endpoints, checked before any upstream call.

A gateway that forwards ``"temperature": "hot"``, ``"n": 1000`` or a message whose content is a
number pays the upstream for a refusal, or for a thousand completions. These schemas accept what
OpenAI's API accepts and nothing else: strict types (no ``"1"`` for ``1``, no ``true`` for ``1``,
no ``1.0`` for an integer), OpenAI's ranges (``temperature`` 0..2, ``top_p`` 0..1, penalties
-2..2 ...), and the gateway's own bounds from :class:`RequestLimits` (``n``, ``max_tokens``,
messages, embedding inputs). Unknown parameters are refused, as OpenAI does.

:func:`validate_chat_completion` and :func:`validate_embeddings` raise a
:class:`~asgi_kit.errors.ProblemError` 400 whose extension members ``param`` (the parameter's
path: ``messages[0].content``) and ``code`` (OpenAI's: ``invalid_type``,
``integer_above_max_value``, ``missing_required_parameter``, ``unknown_parameter`` ...) make it
OpenAI's ``invalid_request_error`` on OpenAI routes. Only the first error is reported, as OpenAI
does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from asgi_kit._asgi.options import check_int
from asgi_kit.errors import BAD_REQUEST, ProblemError

_INT64: Final = 2**63 - 1
_SHORT: Final = 256

ShortStr = Annotated[str, Field(max_length=_SHORT)]
JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The gateway's own bounds, on top of OpenAI's.

    Attributes:
        max_n: the most choices one chat request may ask for (OpenAI allows 128; each is paid).
        max_tokens: the largest ``max_tokens`` / ``max_completion_tokens`` accepted.
        max_messages: the most messages in one chat request.
        max_embedding_inputs: the most inputs of one embeddings request (OpenAI: 2048).
        max_embedding_dimensions: the largest ``dimensions`` of an embeddings request.
    """

    max_n: int = 8
    max_tokens: int = 131_072
    max_messages: int = 2048
    max_embedding_inputs: int = 2048
    max_embedding_dimensions: int = 16_384

    def __post_init__(self) -> None:
        check_int("max_n", self.max_n, minimum=1, maximum=128)  # 128: OpenAI's own bound
        for name in ("max_tokens", "max_messages", "max_embedding_inputs", "max_embedding_dimensions"):
            check_int(name, getattr(self, name), minimum=1)


DEFAULT_LIMITS: Final = RequestLimits()


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class StreamOptions(_Strict):
    """``stream_options`` of a streamed chat completion."""

    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatMessageParam(_Strict):
    """One message of a chat request; ``content`` is checked per role after the schema."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Any = None
    name: Annotated[str, Field(min_length=1, max_length=_SHORT)] | None = None
    tool_calls: Annotated[list[JSONObject], Field(max_length=128)] | None = None
    tool_call_id: ShortStr | None = None
    function_call: JSONObject | None = None
    refusal: str | None = None
    audio: JSONObject | None = None


class ChatCompletionRequest(_Strict):
    """The body of ``POST /v1/chat/completions``."""

    model: Annotated[str, Field(min_length=1, max_length=_SHORT)]
    messages: Annotated[list[ChatMessageParam], Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=_INT64)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=_INT64)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: Any = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: (
        Annotated[dict[str, Annotated[int, Field(ge=-100, le=100)]], Field(max_length=1024)] | None
    ) = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    user: ShortStr | None = None
    seed: Annotated[int, Field(ge=-_INT64 - 1, le=_INT64)] | None = None
    tools: Annotated[list[JSONObject], Field(max_length=128)] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: JSONObject | None = None
    functions: Annotated[list[JSONObject], Field(max_length=128)] | None = None
    function_call: Any = None
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None = None
    store: bool | None = None
    service_tier: ShortStr | None = None
    reasoning_effort: ShortStr | None = None
    verbosity: ShortStr | None = None
    modalities: Annotated[list[ShortStr], Field(max_length=8)] | None = None
    audio: JSONObject | None = None
    prediction: JSONObject | None = None
    web_search_options: JSONObject | None = None
    prompt_cache_key: ShortStr | None = None
    safety_identifier: ShortStr | None = None


class EmbeddingsRequest(_Strict):
    """The body of ``POST /v1/embeddings``; ``input`` is checked after the schema."""

    model: Annotated[str, Field(min_length=1, max_length=_SHORT)]
    input: Any
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: ShortStr | None = None


def invalid_request(message: str, *, param: str | None, code: str | None = None) -> ProblemError:
    """A 400 ``invalid_request_error`` about ``param``."""
    members = {k: v for k, v in (("param", param), ("code", code)) if v is not None}
    return ProblemError(BAD_REQUEST.with_detail(message).with_extensions(**members))


def validate_chat_completion(payload: Any, limits: RequestLimits = DEFAULT_LIMITS) -> ChatCompletionRequest:
    """``payload`` as a :class:`ChatCompletionRequest` within ``limits``, or a 400 :class:`ProblemError`."""
    request = _validate(ChatCompletionRequest, payload)
    if len(request.messages) > limits.max_messages:
        raise _above("messages", "array", limits.max_messages, len(request.messages))
    if request.n is not None and request.n > limits.max_n:
        raise _above("n", "integer", limits.max_n, request.n)
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(request, name)
        if value is not None and value > limits.max_tokens:
            raise _above(name, "integer", limits.max_tokens, value)
    _check_stop(request.stop)
    _check_choice("tool_choice", request.tool_choice, ("none", "auto", "required"))
    _check_choice("function_call", request.function_call, ("none", "auto"))
    if request.stream_options is not None and not request.stream:
        raise invalid_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    for index, message in enumerate(request.messages):
        _check_message(message, f"messages[{index}]")
    return request


def validate_embeddings(payload: Any, limits: RequestLimits = DEFAULT_LIMITS) -> EmbeddingsRequest:
    """``payload`` as an :class:`EmbeddingsRequest` within ``limits``, or a 400 :class:`ProblemError`."""
    request = _validate(EmbeddingsRequest, payload)
    if request.dimensions is not None and request.dimensions > limits.max_embedding_dimensions:
        raise _above("dimensions", "integer", limits.max_embedding_dimensions, request.dimensions)
    _check_embedding_input(request.input, limits)
    return request


_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], payload: Any) -> _M:
    if not isinstance(payload, dict):
        raise invalid_request(
            f"The request body must be a JSON object, but got {_json_type(payload)} instead.",
            param=None,
            code="invalid_type",
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise _from_pydantic(exc) from None


# pydantic error types -> (what was expected, OpenAI's code)
_EXPECTED: Final[Mapping[str, str]] = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _from_pydantic(exc: ValidationError) -> ProblemError:
    error = exc.errors(include_url=False)[0]
    param = _param(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if kind == "missing":
        return invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    if kind == "extra_forbidden":
        return invalid_request(
            f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter"
        )
    if kind in _EXPECTED:
        return invalid_request(
            f"Invalid type for '{param}': expected {_EXPECTED[kind]}, but got {_json_type(got)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind == "finite_number":
        return invalid_request(
            f"Invalid '{param}': the number must be finite.", param=param, code="invalid_value"
        )
    bound = {"less_than_equal": "<=", "less_than": "<", "greater_than_equal": ">=", "greater_than": ">"}
    if kind in bound:
        limit = next(iter(ctx.values()), "?")
        above = bound[kind].startswith("<")
        number = "decimal" if isinstance(limit, float) else "integer"  # the field's type, not the input's
        return invalid_request(
            f"Invalid '{param}': {number} {'above maximum' if above else 'below minimum'} value. "
            f"Expected a value {bound[kind]} {limit}, but got {got} instead.",
            param=param,
            code=f"{number}_{'above_max' if above else 'below_min'}_value",
        )
    if kind in ("too_long", "too_short", "string_too_long", "string_too_short"):
        what = "string" if kind.startswith("string") else ("array" if isinstance(got, list) else "object")
        long = kind.endswith("long")
        limit = ctx.get("max_length" if long else "min_length")
        return invalid_request(
            f"Invalid '{param}': {what} too {'long' if long else 'short'}. Expected {_a(what)} {what} with "
            f"{'maximum' if long else 'minimum'} length {limit}.",
            param=param,
            code=f"{what}_{'above_max' if long else 'below_min'}_length",
        )
    if kind == "literal_error":
        return invalid_request(
            f"Invalid value for '{param}': supported values are {ctx.get('expected')}.",
            param=param,
            code="invalid_value",
        )
    return invalid_request(f"Invalid '{param}': {error['msg']}.", param=param, code="invalid_value")


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _param(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _above(param: str, what: str, limit: int, got: int) -> ProblemError:
    return invalid_request(
        f"Invalid '{param}': {what} above maximum value. Expected a value <= {limit}, but got {got} instead.",
        param=param,
        code=f"{what}_above_max_length" if what == "array" else "integer_above_max_value",
    )


def _check_stop(stop: Any) -> None:
    if stop is None or (isinstance(stop, str) and len(stop) <= _SHORT):
        return
    if isinstance(stop, list) and 1 <= len(stop) <= 4:
        for index, item in enumerate(stop):
            if not isinstance(item, str) or not item or len(item) > _SHORT:
                raise invalid_request(
                    f"Invalid 'stop[{index}]': expected a non-empty string of at most {_SHORT} characters.",
                    param=f"stop[{index}]",
                    code="invalid_type",
                )
        return
    raise invalid_request(
        "Invalid 'stop': expected a string or an array of 1 to 4 strings.", param="stop", code="invalid_type"
    )


def _check_choice(param: str, value: Any, modes: tuple[str, ...]) -> None:
    if value is None or isinstance(value, dict) or (isinstance(value, str) and value in modes):
        return
    raise invalid_request(
        f"Invalid '{param}': expected one of {', '.join(repr(m) for m in modes)} or an object.",
        param=param,
        code="invalid_value",
    )


# The content-part types each role may send (OpenAI's message params).
_PART_TYPES: Final[Mapping[str, frozenset[str]]] = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text"}),
    "function": frozenset({"text"}),
}
_MAX_PARTS: Final = 256


def _check_message(message: ChatMessageParam, where: str) -> None:
    role, content = message.role, message.content
    if role == "tool" and message.tool_call_id is None:
        raise invalid_request(
            f"Missing required parameter: '{where}.tool_call_id'.",
            param=f"{where}.tool_call_id",
            code="missing_required_parameter",
        )
    if role == "function" and message.name is None:
        raise invalid_request(
            f"Missing required parameter: '{where}.name'.",
            param=f"{where}.name",
            code="missing_required_parameter",
        )
    if content is None:
        if role == "assistant" and (
            message.tool_calls or message.function_call or message.refusal is not None
        ):
            return
        if role in ("assistant", "function"):
            return  # OpenAI accepts a null content for these roles
        raise invalid_request(
            f"Missing required parameter: '{where}.content'.",
            param=f"{where}.content",
            code="missing_required_parameter",
        )
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not 1 <= len(content) <= _MAX_PARTS:
        raise invalid_request(
            f"Invalid '{where}.content': expected a string or an array of 1 to {_MAX_PARTS} content parts, "
            f"but got {_json_type(content)} instead.",
            param=f"{where}.content",
            code="invalid_type",
        )
    allowed = _PART_TYPES[role]
    for index, part in enumerate(content):
        _check_part(part, allowed, f"{where}.content[{index}]")


def _check_part(part: Any, allowed: frozenset[str], where: str) -> None:
    if not isinstance(part, dict):
        raise invalid_request(
            f"Invalid '{where}': expected a content part object, but got {_json_type(part)} instead.",
            param=where,
            code="invalid_type",
        )
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise invalid_request(
            f"Invalid '{where}.type': expected one of {', '.join(sorted(allowed))}.",
            param=f"{where}.type",
            code="invalid_value",
        )
    value = part.get(kind)
    expected: type = str if kind in ("text", "refusal") else dict
    if not isinstance(value, expected):
        raise invalid_request(
            f"Invalid '{where}.{kind}': expected {'a string' if expected is str else 'an object'}, "
            f"but got {_json_type(value)} instead.",
            param=f"{where}.{kind}",
            code="invalid_type",
        )
    if kind == "image_url" and not (isinstance(value, dict) and isinstance(value.get("url"), str)):
        raise invalid_request(
            f"Missing required parameter: '{where}.image_url.url'.",
            param=f"{where}.image_url.url",
            code="missing_required_parameter",
        )


def _check_embedding_input(value: Any, limits: RequestLimits) -> None:
    if isinstance(value, str):
        if not value:
            raise invalid_request(
                "Invalid 'input': the string must not be empty.", param="input", code="invalid_value"
            )
        return
    if not isinstance(value, list) or not value:
        raise invalid_request(
            "Invalid 'input': expected a string, an array of strings, an array of tokens or an array of "
            f"token arrays, but got {_json_type(value) if value != [] else 'an empty array'} instead.",
            param="input",
            code="invalid_type",
        )
    if len(value) > limits.max_embedding_inputs:
        raise _above("input", "array", limits.max_embedding_inputs, len(value))
    first = value[0]
    if _is_token(first):  # one token array
        _check_tokens(value, "input")
        return
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if isinstance(item, str) and isinstance(first, str):
            if not item:
                raise invalid_request(
                    f"Invalid '{where}': the string must not be empty.", param=where, code="invalid_value"
                )
        elif isinstance(item, list) and isinstance(first, list) and item:
            _check_tokens(item, where)
        else:
            expected = "a non-empty string" if isinstance(first, str) else "a non-empty array of tokens"
            raise invalid_request(
                f"Invalid '{where}': expected {expected}, but got {_json_type(item)} instead.",
                param=where,
                code="invalid_type",
            )


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_tokens(tokens: list[Any], where: str) -> None:
    for index, token in enumerate(tokens):
        if not _is_token(token) or not 0 <= token <= 2**31 - 1:
            raise invalid_request(
                f"Invalid '{where}[{index}]': expected a token id (an integer >= 0), but got {_json_type(token)}.",
                param=f"{where}[{index}]",
                code="invalid_type",
            )


__all__ = [
    "DEFAULT_LIMITS",
    "ChatCompletionRequest",
    "ChatMessageParam",
    "EmbeddingsRequest",
    "RequestLimits",
    "StreamOptions",
    "invalid_request",
    "validate_chat_completion",
    "validate_embeddings",
]
