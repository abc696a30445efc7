"""examples/guards_example.py works as its docstring says."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "guards_example.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("guards_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_answers_ok_504_and_413() -> None:
    """The example app answers /ok with security headers, /slow with a 504 and a 2 MB upload with a 413."""
    app = load_example().app

    async def two_megabytes() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"\0" * 65536

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        ok = await client.get("/ok")
        assert ok.status_code == 200 and ok.headers["x-content-type-options"] == "nosniff"
        assert ok.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        slow = await client.get("/slow")
        assert slow.status_code == 504 and slow.headers["content-type"] == "application/problem+json"
        assert slow.headers["x-frame-options"] == "DENY"
        upload = await client.put("/upload", content=two_megabytes())
        assert upload.status_code == 413 and upload.json()["max_body_size"] == 1024 * 1024
        small = await client.put("/upload", content=b"abc")
        assert small.json() == {"ok": True, "received": 3}
