"""The README's example runs as printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

README = Path(__file__).parents[1] / "README.md"


async def test_readme_example_serves_requests() -> None:
    """The first Python block builds an app with request ids, problem+json 404s and /metrics."""
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(README), "exec"), namespace)
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://readme") as client:
        missing = await client.get("/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["request_id"] == missing.headers["x-request-id"]
        assert "http_requests_total" in (await client.get("/metrics")).text
