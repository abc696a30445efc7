"""OpenAIClient against the fake upstream served by uvicorn, and the fake against the official SDK."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import openai
import pytest

from asgi_kit._asgi.context import request_id_var
from asgi_kit.httpclient import (
    AuthenticationError,
    BadRequestError,
    ChatCompletionChunk,
    HTTPClient,
    NotFoundError,
    OpenAIClient,
    VirtualClock,
)
from asgi_kit.testing.fake_upstream import FakeOpenAI
from tests.harness.servers import Served, serve

KEY = "sk-test-0123456789"
USER = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
SDK_MESSAGES: Any = USER  # the SDK wants its TypedDicts


@pytest.fixture(scope="module")
def fake() -> FakeOpenAI:
    """One fake upstream for the module (tests only read what it recorded)."""
    return FakeOpenAI(api_key=KEY)


@pytest.fixture(scope="module")
def served(fake: FakeOpenAI) -> Iterator[Served]:
    """The fake upstream under a real uvicorn."""
    with serve(fake, "uvicorn") as served:
        yield served


def client(served: Served, **options: object) -> OpenAIClient:
    return OpenAIClient(served.url + "/v1", KEY, clock=VirtualClock(), **options)  # type: ignore[arg-type]


async def test_chat_completion(served: Served) -> None:
    """A completion comes back typed, with usage, keeping fields the model does not declare."""
    async with client(served) as api:
        completion = await api.chat_completion(model="fake-gpt-4o-mini", messages=USER, temperature=0)
    assert completion.text == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert completion.usage.prompt_tokens == 4
    assert completion.model_extra == {"system_fingerprint": "fp_fake"}


async def test_chat_completion_max_tokens_truncates(served: Served) -> None:
    """max_tokens cuts the reply and reports finish_reason=length."""
    async with client(served) as api:
        completion = await api.chat_completion(model="fake-gpt-4o-mini", messages=USER, max_tokens=1)
    assert completion.text == "Echo: " and completion.choices[0].finish_reason == "length"


async def test_chat_completion_stream(served: Served) -> None:
    """A streamed completion yields chunks whose text adds up to the reply, usage last."""
    async with client(served) as api:
        chunks: list[ChatCompletionChunk] = [
            chunk
            async for chunk in api.chat_completion_stream(
                model="fake-gpt-4o-mini", messages=USER, include_usage=True
            )
        ]
    assert "".join(chunk.text for chunk in chunks) == "Echo: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7


async def test_stream_closed_early_frees_the_connection(served: Served) -> None:
    """Stopping a stream early (aclosing) releases its connection at once."""
    http = HTTPClient(clock=VirtualClock())
    async with http, OpenAIClient(served.url + "/v1", KEY, http_client=http) as api:
        async with aclosing(api.chat_completion_stream(model="fake-gpt-4o-mini", messages=USER)) as chunks:
            async for _chunk in chunks:
                break
        assert http.connections_in_use == 0
        assert (await api.list_models()).ids  # the injected client is still open


async def test_embeddings(served: Served) -> None:
    """Embeddings for one text and for a batch: one deterministic vector each."""
    async with client(served) as api:
        one = await api.embeddings(model="fake-embedding", input="hello")
        again = await api.embeddings(model="fake-embedding", input="hello")
        batch = await api.embeddings(model="fake-embedding", input=["hello", "world"], dimensions=4)
    assert len(one.data) == 1 and len(one.data[0].embedding) == 8
    assert one.data[0].embedding == again.data[0].embedding
    assert [e.index for e in batch.data] == [0, 1] and len(batch.data[1].embedding) == 4


async def test_list_models(served: Served) -> None:
    """list_models returns the served model ids."""
    async with client(served) as api:
        models = await api.list_models()
    assert models.ids == ["fake-gpt-4o-mini", "fake-embedding"]


async def test_wrong_key_is_an_authentication_error_with_request_id(served: Served) -> None:
    """A 401 becomes AuthenticationError carrying status, code, body and the upstream request id."""
    async with OpenAIClient(served.url + "/v1", "sk-wrong", clock=VirtualClock()) as api:
        with pytest.raises(AuthenticationError) as info:
            await api.list_models()
        with pytest.raises(AuthenticationError):
            await anext(api.chat_completion_stream(model="fake-gpt-4o-mini", messages=USER))
    error = info.value
    assert error.status_code == 401 and error.code == "invalid_api_key"
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.body["error"]["type"] == "invalid_request_error"
    assert "sk-wrong" not in str(error) and "sk-wrong" not in repr(api)


async def test_unknown_model_and_bad_request(served: Served) -> None:
    """An unknown model is NotFoundError; an empty message list is BadRequestError."""
    async with client(served) as api:
        with pytest.raises(NotFoundError) as info:
            await api.chat_completion(model="nope", messages=USER)
        with pytest.raises(BadRequestError):
            await api.chat_completion(model="fake-gpt-4o-mini", messages=[])
    assert info.value.code == "model_not_found" and info.value.param == "model"


async def test_request_id_and_idempotency_key_reach_the_upstream(served: Served, fake: FakeOpenAI) -> None:
    """The caller's request id goes upstream, with an Idempotency-Key on POSTs."""
    token = request_id_var.set("rid-openai-1")
    try:
        async with client(served) as api:
            await api.chat_completion(model="fake-gpt-4o-mini", messages=USER)
    finally:
        request_id_var.reset(token)
    seen = next(r for r in fake.requests if r.header("x-request-id") == "rid-openai-1")
    assert seen.header("authorization") == f"Bearer {KEY}"
    assert (seen.header("idempotency-key") or "").startswith("asgi-kit-")


def test_repr_masks_the_key(served: Served) -> None:
    """The API key never appears in repr."""
    api = client(served)
    assert KEY not in repr(api) and "'***'" in repr(api)
    assert "api_key=None" in repr(OpenAIClient(served.url, None))


def test_constructor_validation() -> None:
    """An empty base_url or api_key is refused at construction."""
    with pytest.raises(ValueError, match="base_url"):
        OpenAIClient("", "k")
    with pytest.raises(ValueError, match="api_key"):
        OpenAIClient("http://127.0.0.1/v1", "")


# The same fake, driven by the official SDK: proof that it speaks the real wire format.


async def test_official_sdk_chat_completion(served: Served) -> None:
    """openai.AsyncOpenAI parses the fake's completion."""
    async with openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(model="fake-gpt-4o-mini", messages=SDK_MESSAGES)
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.usage is not None and completion.usage.total_tokens == 7


async def test_official_sdk_stream(served: Served) -> None:
    """openai.AsyncOpenAI streams the fake's SSE chunks, usage included."""
    async with openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="fake-gpt-4o-mini",
            messages=SDK_MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello there"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


async def test_official_sdk_embeddings_and_models(served: Served) -> None:
    """openai.AsyncOpenAI decodes the fake's embeddings (base64 by default) and lists its models."""
    async with openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        embedding = await sdk.embeddings.create(model="fake-embedding", input=["a", "b"])
        floats = await sdk.embeddings.create(model="fake-embedding", input="a", encoding_format="float")
        models = [m.id async for m in sdk.models.list()]
        model = await sdk.models.retrieve("fake-embedding")
    assert len(embedding.data) == 2 and embedding.data[0].embedding == pytest.approx(floats.data[0].embedding)
    assert models == ["fake-gpt-4o-mini", "fake-embedding"] and model.owned_by == "asgi-kit"


async def test_official_sdk_errors(served: Served) -> None:
    """openai.AsyncOpenAI maps the fake's error bodies to its own exceptions."""
    async with openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="sk-wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as info:
            await sdk.models.list()
    assert info.value.code == "invalid_api_key" and (info.value.request_id or "").startswith("req_")
    async with openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(model="nope", messages=SDK_MESSAGES)


def test_base64_vectors_match_float_vectors() -> None:
    """The fake's base64 encoding is little-endian float32, as the API's."""
    fake = FakeOpenAI()
    as_float = fake._embeddings({"model": "fake-embedding", "input": "x"})["data"][0]["embedding"]
    packed = fake._embeddings({"model": "fake-embedding", "input": "x", "encoding_format": "base64"})
    decoded = struct.unpack("<8f", base64.b64decode(packed["data"][0]["embedding"]))
    assert list(decoded) == pytest.approx(as_float, abs=1e-6)


async def test_openai_calls_get_client_spans(served: Served) -> None:
    """tracer_provider reaches the HTTPClient: a completion and a stream each record a CLIENT span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        async with client(served, tracer_provider=provider) as api:
            await api.chat_completion(model="fake-gpt-4o-mini", messages=USER)
            async with aclosing(
                api.chat_completion_stream(model="fake-gpt-4o-mini", messages=USER)
            ) as chunks:
                assert [chunk async for chunk in chunks]
    finally:
        provider.shutdown()
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["POST", "POST"]
    for span in spans:
        assert span.attributes is not None and span.attributes["http.response.status_code"] == 200
        assert span.attributes["url.full"] == f"{served.url}/v1/chat/completions"
