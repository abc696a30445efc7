"""One worker process of the budget concurrency test (run with ``python -m``).

Opens its own pool, prints ``ready``, waits for the start file, then sends ``rounds`` waves of
``concurrency`` concurrent requests through BudgetMiddleware + PostgresUsageStore; the app
records one token per request it serves. Prints the status counts as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter

import httpx

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.budget import BudgetMiddleware
from asgi_kit.database import PostgresUsageStore, new_postgres_pool
from asgi_kit.models import Usage


async def run(
    url: str, org_id: str, rounds: int, concurrency: int, cache_ttl: float, start_file: str
) -> None:
    pool = await new_postgres_pool(url, min_size=2, max_size=10, timeout=20)
    store = PostgresUsageStore(pool)

    async def spend_one_token(scope: Scope, receive: Receive, send: Send) -> None:
        await store.record_usage(Usage(org_id=org_id, model="m", prompt_tokens=1))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    budget = BudgetMiddleware(spend_one_token, store=store, cache_ttl=cache_ttl)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        set_principal(scope, Principal(user_id="u", org_id=org_id, role="org_user", auth_method="api_key"))
        await budget(scope, receive, send)

    print("ready", flush=True)
    for _ in range(3000):
        if os.path.exists(start_file):
            break
        await asyncio.sleep(0.01)
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
        for _ in range(rounds):
            responses = await asyncio.gather(
                *(client.post("/v1/chat/completions") for _ in range(concurrency))
            )
            statuses.update(r.status_code for r in responses)
    await pool.close()
    print(json.dumps({str(k): v for k, v in statuses.items()}), flush=True)


if __name__ == "__main__":
    url, org, rounds, concurrency, ttl, start = sys.argv[1:7]
    asyncio.run(asyncio.wait_for(run(url, org, int(rounds), int(concurrency), float(ttl), start), 120))
