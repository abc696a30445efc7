"""Typed responses of the OpenAI-compatible API (pydantic, tolerant of fields added upstream).

Every model accepts and keeps unknown fields (``extra="allow"``): providers add fields all the
time (``system_fingerprint``, ``service_tier``, ``logprobs``...) and a client that rejects them
breaks on the provider's schedule. What the kit relies on is required; the rest is optional.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Usage(_Model):
    """Token counts of a call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatMessage(_Model):
    """An assistant message (``tool_calls``, ``refusal``... are kept as extra fields)."""

    role: str = "assistant"
    content: str | None = None


class ChatCompletionChoice(_Model):
    """One choice of a completion."""

    index: int = 0
    message: ChatMessage
    finish_reason: str | None = None


class ChatCompletion(_Model):
    """The answer of ``POST /chat/completions``; at least one choice."""

    id: str
    object: str = "chat.completion"
    created: int = 0
    model: str
    choices: list[ChatCompletionChoice] = Field(min_length=1)
    usage: Usage | None = None

    @property
    def text(self) -> str:
        """The first choice's content (``""`` when it has none, e.g. a tool call)."""
        return self.choices[0].message.content or ""


class ChoiceDelta(_Model):
    """The increment a stream chunk carries."""

    role: str | None = None
    content: str | None = None


class ChatCompletionChunkChoice(_Model):
    """One choice of a stream chunk."""

    index: int = 0
    delta: ChoiceDelta = Field(default_factory=ChoiceDelta)
    finish_reason: str | None = None


class ChatCompletionChunk(_Model):
    """One ``data:`` event of a streamed completion (the last may carry only ``usage``)."""

    id: str
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str
    choices: list[ChatCompletionChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None

    @property
    def text(self) -> str:
        """The content this chunk adds (``""`` for role, finish and usage chunks)."""
        return "".join(choice.delta.content or "" for choice in self.choices[:1])


class Embedding(_Model):
    """One embedding vector (a list of floats, or a base64 string if asked for)."""

    index: int = 0
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingsResponse(_Model):
    """The answer of ``POST /embeddings``."""

    object: str = "list"
    data: list[Embedding]
    model: str
    usage: Usage | None = None


class Model(_Model):
    """A model the upstream serves."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = ""


class ModelList(_Model):
    """The answer of ``GET /models``."""

    object: str = "list"
    data: list[Model]

    @property
    def ids(self) -> list[str]:
        """The model ids."""
        return [model.id for model in self.data]


__all__ = [
    "ChatCompletion",
    "ChatCompletionChoice",
    "ChatCompletionChunk",
    "ChatCompletionChunkChoice",
    "ChatMessage",
    "ChoiceDelta",
    "Embedding",
    "EmbeddingsResponse",
    "Model",
    "ModelList",
    "Usage",
]
