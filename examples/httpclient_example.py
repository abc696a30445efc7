"""A tour of the HTTP clients against the bundled fake OpenAI upstream.

Run it::

    python examples/httpclient_example.py

It serves ``FakeOpenAI`` with uvicorn on a free loopback port, then: a chat completion, a
streamed completion printed token by token, embeddings, the model list, a typed error, and
``HTTPClient`` retrying a flaky endpoint on a virtual clock (no real sleeping). The upstream
sees the request id set below, as it would inside a request handled by the kit's stack.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from contextlib import aclosing

import uvicorn

from asgi_kit.httpclient import HTTPClient, NotFoundError, OpenAIClient, RetryPolicy, VirtualClock
from asgi_kit.logging import with_request_id
from asgi_kit.testing import FakeOpenAI
from asgi_kit.types import Receive, Scope, Send

fake = FakeOpenAI(token_delay=0.05)
flaky_calls = 0


async def upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """The fake OpenAI API, plus ``/flaky`` that fails twice with 503 before answering."""
    global flaky_calls
    if scope["type"] == "http" and scope["path"] == "/flaky":
        flaky_calls += 1
        status = 503 if flaky_calls <= 2 else 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b"busy" if status == 503 else b"ok"})
        return
    await fake(scope, receive, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def tour(base: str) -> None:
    async with OpenAIClient(base + "/v1", api_key=None) as api:
        completion = await api.chat_completion(
            model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "hello from the tour"}]
        )
        print("completion:", completion.text, "| usage:", completion.usage)

        print("stream:    ", end="", flush=True)
        stream = api.chat_completion_stream(
            model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "one token at a time"}]
        )
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                print(chunk.text, end="", flush=True)
        print()

        vectors = await api.embeddings(model="fake-embedding", input=["a", "b"])
        print("embeddings:", [len(item.embedding) for item in vectors.data], "dimensions")
        print("models:    ", (await api.list_models()).ids)
        try:
            await api.chat_completion(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        except NotFoundError as exc:
            print(
                f"error:      {type(exc).__name__} {exc.status_code} {exc.code} request_id={exc.request_id}"
            )

    clock = VirtualClock()
    async with HTTPClient(base_url=base, clock=clock, retry=RetryPolicy(max_retries=3)) as client:
        response = await client.get("/flaky")
        print(
            f"flaky:      {response.status} after {response.attempts} attempts, waited {clock.sleeps} (virtual)"
        )
    print("upstream saw X-Request-ID:", {r.header("x-request-id") for r in fake.requests})


async def main() -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(upstream, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    try:
        with with_request_id("tour-0001"):
            await tour(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
