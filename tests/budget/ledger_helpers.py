"""Test doubles shared by the ledger tests: a sink that can fail or hang, OpenAI-shaped chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

from asgi_kit.budget import UsageRecord


class ListSink:
    """Keeps records by request id (idempotent), counts calls; ``fail``/``hang`` inject faults."""

    def __init__(self) -> None:
        self.records: dict[str, UsageRecord] = {}
        self.order: list[str] = []
        self.calls = 0
        self.duplicates = 0
        self.fail = False
        self.hang: asyncio.Event | None = None

    async def write_batch(self, records: Sequence[UsageRecord]) -> None:
        self.calls += 1
        if self.hang is not None:
            await self.hang.wait()
        if self.fail:
            raise ConnectionError("sink down")
        for record in records:
            if record.request_id in self.records:
                self.duplicates += 1
                continue
            self.records[record.request_id] = record
            self.order.append(record.request_id)

    @property
    def tokens(self) -> int:
        return sum(r.total_tokens for r in self.records.values())


def record(n: int, org: str = "org", tokens: int = 3) -> UsageRecord:
    return UsageRecord(
        request_id=f"r{n}", org_id=org, model="m", prompt_tokens=1, completion_tokens=tokens - 1
    )


def content_chunk(text: str = "w ") -> Any:
    delta = SimpleNamespace(content=text)
    return SimpleNamespace(choices=[SimpleNamespace(delta=delta)], usage=None)


def usage_chunk(prompt: int, completion: int) -> Any:
    return SimpleNamespace(
        choices=[], usage=SimpleNamespace(prompt_tokens=prompt, completion_tokens=completion)
    )


class UpstreamError(Exception):
    """Stands for the client's APIError."""


async def upstream(
    tokens: int,
    *,
    prompt: int = 4,
    delay: float = 0.0,
    usage: bool = True,
    fail_after: int | None = None,
    log: list[str] | None = None,
) -> AsyncIterator[Any]:
    """An OpenAI-shaped stream: ``tokens`` content chunks, then a usage chunk."""
    try:
        for index in range(tokens):
            if fail_after is not None and index == fail_after:
                raise UpstreamError("upstream failed mid-stream")
            if delay:
                await asyncio.sleep(delay)
            yield content_chunk()
        if usage:
            yield usage_chunk(prompt, tokens)
    finally:
        if log is not None:
            log.append("closed")
