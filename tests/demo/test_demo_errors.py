"""The demo's errors are OpenAI's, bad bodies never reach the upstream, and its output is JSON lines."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from asgi_kit import Stack
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.auth import AuthMiddleware, InMemoryAPIKeyStore
from asgi_kit.auth.apikey import generate_api_key
from asgi_kit.demo import DemoConfig, build_gateway, key_record
from asgi_kit.demo.router import Router
from asgi_kit.errors import UNPROCESSABLE_CONTENT, ProblemDetailsMiddleware, ProblemError
from asgi_kit.guards import TimeoutMiddleware
from asgi_kit.logging import RequestIDMiddleware, new_logger
from asgi_kit.rbac import RequirePermission
from asgi_kit.testing.fake_upstream import FakeOpenAI
from tests.harness.servers import Served, free_port, serve, wait_ready

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
USER = {"role": "user", "content": "hi"}


@contextmanager
def gateway(upstream_url: str | None = None, budget: int = 1_000_000) -> Iterator[tuple[Served, str]]:
    """The demo gateway under uvicorn, its upstream the given URL (default: the bundled fake)."""
    port = free_port()
    key = generate_api_key("sk", environment="demo")
    logger = new_logger(f"demo-errors-{port}", stream=io.StringIO())
    config = DemoConfig(
        port=port,
        api_key=key,
        budget_tokens=budget,
        token_delay=0.0,
        upstream_url=upstream_url,
        reserve_max_tokens=4,  # small enough for the tiny budgets these tests spend
    )
    with serve(build_gateway(config, logger=logger), port=port, lifespan="on") as served:
        yield served, key


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    """A fake OpenAI upstream in its own server, recording every request it sees."""
    fake = FakeOpenAI(models=("fake-gpt-4o-mini", "fake-embedding"))
    with serve(fake, lifespan="on") as served:
        yield fake, f"{served.url}/v1"


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": "fake-gpt-4o-mini", "messages": [USER], **fields}).encode()


HOSTILE: list[tuple[str, str, bytes, str | None]] = [
    ("depth bomb", CHAT, b"[" * 400_000, None),
    ("depth bomb in a member", CHAT, b'{"model": "m", "messages": ' + b"[" * 400_000, "messages"),
    (
        "huge number",
        CHAT,
        chat(max_tokens=1).replace(b'"max_tokens": 1', b'"max_tokens": 1e400'),
        "max_tokens",
    ),
    ("NaN", CHAT, chat(temperature=1).replace(b'"temperature": 1', b'"temperature": NaN'), "temperature"),
    ("Infinity", CHAT, chat(top_p=1).replace(b'"top_p": 1', b'"top_p": Infinity'), "top_p"),
    ("5000-digit integer", CHAT, chat(seed=1).replace(b'"seed": 1', b'"seed": ' + b"7" * 5000), "seed"),
    ("string as number", CHAT, chat(temperature="hot"), "temperature"),
    ("boolean as number", CHAT, chat(n=True), "n"),
    ("float as integer", CHAT, chat(max_tokens=10.0), "max_tokens"),
    ("n too large", CHAT, chat(n=1000), "n"),
    ("temperature out of range", CHAT, chat(temperature=9), "temperature"),
    ("top_p out of range", CHAT, chat(top_p=-1), "top_p"),
    ("penalty out of range", CHAT, chat(presence_penalty=2.5), "presence_penalty"),
    ("max_tokens zero", CHAT, chat(max_tokens=0), "max_tokens"),
    ("stream not a boolean", CHAT, chat(stream="yes"), "stream"),
    ("number as content", CHAT, chat(messages=[{"role": "user", "content": 12}]), "messages[0].content"),
    (
        "bad content part",
        CHAT,
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": ["x"]}]}]),
        "messages[0].content[0].text",
    ),
    (
        "object as content",
        CHAT,
        chat(messages=[{"role": "user", "content": {"a": 1}}]),
        "messages[0].content",
    ),
    ("unknown role", CHAT, chat(messages=[{"role": "root", "content": "x"}]), "messages[0].role"),
    ("missing messages", CHAT, b'{"model": "fake-gpt-4o-mini"}', "messages"),
    ("missing model", CHAT, b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    ("unknown parameter", CHAT, chat(temperatur=1), "temperatur"),
    ("bad UTF-8", CHAT, b'{"model": "\xff", "messages": []}', None),
    ("not JSON", CHAT, b"{not json", None),
    ("array body", CHAT, b"[1, 2, 3]", None),
    ("string body", CHAT, b'"hello"', None),
    ("empty body", CHAT, b"", None),
    ("embedding input wrong type", EMBED, b'{"model": "fake-embedding", "input": 42}', "input"),
    ("embedding bad item", EMBED, b'{"model": "fake-embedding", "input": ["a", null]}', "input[1]"),
    ("embedding empty list", EMBED, b'{"model": "fake-embedding", "input": []}', "input"),
    (
        "embedding dimensions string",
        EMBED,
        b'{"model": "fake-embedding", "input": "a", "dimensions": "8"}',
        "dimensions",
    ),
]


async def test_hostile_and_sloppy_bodies_stop_at_the_door(upstream: tuple[FakeOpenAI, str]) -> None:
    """Every hostile or sloppy body is a 400 invalid_request_error naming the parameter; none goes upstream."""
    fake, upstream_url = upstream
    with gateway(upstream_url) as (served, key):
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=10) as http:
            for name, path, body, param in HOSTILE:
                response = await http.post(path, content=body)
                assert response.status_code == 400, (name, response.text)
                assert response.headers["content-type"] == "application/json", name
                error = response.json()["error"]
                assert error["type"] == "invalid_request_error", name
                assert error["param"] == param, (name, error)
                assert error["message"], name
            oversize = await http.post(
                CHAT, content=chat(messages=[{"role": "user", "content": "x" * (1 << 20)}])
            )
            assert oversize.status_code == 413
            assert oversize.json()["error"]["code"] == "request_too_large"
            assert not [r for r in fake.requests if r.method == "POST"], "a refused body reached the upstream"
            # The same gateway still serves a good request, through the same upstream.
            good = await http.post(CHAT, content=chat(max_tokens=5, temperature=0.5, n=1))
            assert good.status_code == 200, good.text
            assert [r.path for r in fake.requests if r.method == "POST"] == [CHAT]


async def expect(call: Any, exc_class: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    with pytest.raises(exc_class) as info:
        await call
    exc = info.value
    assert exc.status_code == status
    assert exc.response.headers["content-type"] == "application/json"
    assert isinstance(exc.body, dict) and set(exc.body) == {"message", "type", "param", "code"}
    assert exc.message.startswith(f"Error code: {status}") and exc.body["message"] in exc.message
    return exc


async def test_openai_package_raises_the_matching_exceptions(upstream: tuple[FakeOpenAI, str]) -> None:
    """The official client raises BadRequest, Authentication, NotFound, 413, RateLimit, InternalServer errors."""
    _, upstream_url = upstream
    with gateway(upstream_url, budget=12) as (served, key):
        client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)
        bad = await expect(
            client.chat.completions.create(model="fake-gpt-4o-mini", messages=[USER], temperature="hot"),  # type: ignore[arg-type]
            openai.BadRequestError,
            400,
        )
        assert (bad.type, bad.code, bad.param) == ("invalid_request_error", "invalid_type", "temperature")
        too_many = await expect(
            client.chat.completions.create(model="fake-gpt-4o-mini", messages=[USER], n=1000),
            openai.BadRequestError,
            400,
        )
        assert (too_many.code, too_many.param) == ("integer_above_max_value", "n")

        wrong_key = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="sk-wrong", max_retries=0)
        denied = await expect(wrong_key.models.list(), openai.AuthenticationError, 401)
        assert (denied.type, denied.code) == ("invalid_request_error", "invalid_api_key")
        assert denied.response.headers["www-authenticate"].startswith("Bearer")

        missing = await expect(
            client.chat.completions.create(model="no-such-model", messages=[USER]), openai.NotFoundError, 404
        )
        assert (missing.type, missing.code, missing.param) == (
            "invalid_request_error",
            "model_not_found",
            "model",
        )
        assert missing.request_id == missing.response.headers["x-request-id"]

        unknown_path = await expect(
            client.get("/nothing-here", cast_to=httpx.Response), openai.NotFoundError, 404
        )
        assert unknown_path.type == "invalid_request_error"

        huge = await expect(
            client.chat.completions.create(
                model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "x" * (1 << 20)}]
            ),
            openai.APIStatusError,
            413,
        )
        assert huge.code == "request_too_large"

        with pytest.raises(openai.RateLimitError) as quota:
            for _ in range(10):
                await client.chat.completions.create(
                    model="fake-gpt-4o-mini", messages=[{"role": "user", "content": "a b c d"}]
                )
                await asyncio.sleep(0.2)  # the ledger settles usage into the budget within 0.1 s
        assert (quota.value.type, quota.value.code) == ("insufficient_quota", "insufficient_quota")
        await client.close()
        await wrong_key.close()

    # An upstream nobody answers: a 502 server_error, not the transport's text.
    with gateway(f"http://127.0.0.1:{free_port()}/v1") as (served, key):
        client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)
        down = await expect(client.models.list(), openai.InternalServerError, 502)
        assert (down.type, down.code) == ("server_error", "upstream_error")
        await client.close()


async def test_openai_package_on_the_kit_layers_alone() -> None:
    """403, 422, 500 and 504 from the kit's own layers reach the official client as OpenAI errors."""
    key = generate_api_key("sk", environment="test")

    async def unprocessable(scope: Scope, receive: Receive, send: Send) -> None:
        raise ProblemError(
            UNPROCESSABLE_CONTENT.with_detail("That cannot be done.").with_extensions(param="input")
        )

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("postgresql://user:s3cr3t@db")

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(10)

    router = Router(
        {
            "/v1/admin": {"GET": RequirePermission(unprocessable, "manage_org_users")},
            "/v1/unprocessable": {"GET": unprocessable},
            "/v1/broken": {"GET": broken},
            "/v1/slow": {"GET": slow},
        }
    )
    app = (
        Stack()
        .use(RequestIDMiddleware)
        .use(ProblemDetailsMiddleware, reraise=False, openai_paths=["/v1/*"])
        .use(TimeoutMiddleware, timeout=0.2)
        .use(AuthMiddleware, api_keys=InMemoryAPIKeyStore([key_record(key, "org")]))
        .wrap(router)
    )
    with serve(app) as served:
        client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)
        forbidden = await expect(
            client.get("/admin", cast_to=httpx.Response), openai.PermissionDeniedError, 403
        )
        assert (forbidden.type, forbidden.code) == ("invalid_request_error", "insufficient_permissions")
        assert "insufficient_scope" in forbidden.response.headers["www-authenticate"]
        bad = await expect(
            client.get("/unprocessable", cast_to=httpx.Response), openai.UnprocessableEntityError, 422
        )
        assert (bad.param, bad.body["message"]) == ("input", "That cannot be done.")  # type: ignore[index]
        boom = await expect(client.get("/broken", cast_to=httpx.Response), openai.InternalServerError, 500)
        assert boom.type == "server_error" and "s3cr3t" not in boom.message
        late = await expect(client.get("/slow", cast_to=httpx.Response), openai.InternalServerError, 504)
        assert (late.type, late.code) == ("server_error", "timeout")
        await client.close()


def test_demo_output_after_the_banner_is_json_lines(tmp_path: Path) -> None:
    """`asgi-kit demo` as a user runs it: after the banner, every line it writes is one JSON object."""
    port = free_port()
    key = generate_api_key("sk", environment="demo")
    output = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASGI_KIT_", "PROMETHEUS_MULTIPROC_DIR"))}
    command = [
        sys.executable,
        "-m",
        "asgi_kit.cli",
        "demo",
        "--port",
        str(port),
        "--api-key",
        key,
        "--token-delay",
        "0",
    ]
    with output.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, time.monotonic() + 60)
        auth = {"authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=auth, timeout=10) as http:
            assert http.post(CHAT, content=chat()).status_code == 200
            with http.stream("POST", CHAT, content=chat(stream=True)) as streamed:
                assert b"[DONE]" in b"".join(streamed.iter_bytes())
            assert http.post(CHAT, content=b"[" * 400_000).status_code == 400
            assert http.post(CHAT, content=chat(temperature="hot")).status_code == 400
            assert http.post(CHAT, content=chat(model="no-such-model")).status_code == 404
            assert http.get("/v1/nothing").status_code == 404
            assert http.get("/v1/models", headers={"authorization": "Bearer nope"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    lines = output.read_text().splitlines()
    end_of_banner = next(i for i, line in enumerate(lines) if "Ctrl-C stops it." in line)
    records = []
    for line in lines[end_of_banner + 1 :]:
        record = json.loads(line)  # raises on any plain-text line
        assert isinstance(record, dict), line
        records.append(record)
    access = [r for r in records if "status" in r and "path" in r]
    assert {r["status"] for r in access} >= {200, 400, 401, 404}
    upstream_failure = [r for r in records if r.get("logger") == "asgi_kit.demo"]
    assert upstream_failure and upstream_failure[0]["level"] == "WARNING"
    assert upstream_failure[0]["upstream_code"] == "model_not_found"
    assert all("Traceback" not in line for line in lines)
