"""examples/budget_example.py works as its docstring says."""

from __future__ import annotations

import httpx

from asgi_kit.budget import InMemoryBudgetStore
from examples.budget_example import BUDGET, ORG, build_app, from_environment


async def test_example_spends_then_refuses() -> None:
    """Two calls spend the 100-token budget; the third gets OpenAI's insufficient_quota 429."""
    app = build_app(InMemoryBudgetStore([(ORG, BUDGET)]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        calls = [await client.post("/v1/chat/completions", headers={"x-org": ORG}) for _ in range(3)]
        live = await client.get("/health/livez")
        ready = await client.get("/health/readyz")
    assert [c.status_code for c in calls] == [200, 200, 429]
    assert calls[1].json()["remaining"] == 0
    assert calls[2].json()["error"]["code"] == "insufficient_quota"
    assert live.status_code == ready.status_code == 200


def test_example_defaults_to_memory(monkeypatch: object) -> None:
    """Without ASGI_KIT_DATABASE__URL the example builds in memory."""
    import os

    os.environ.pop("ASGI_KIT_DATABASE__URL", None)
    assert callable(from_environment())
