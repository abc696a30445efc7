"""One worker process of the budget concurrency test (run with ``python -m``).

Opens its own pool, prints ``ready``, waits for the start file, then sends ``rounds * concurrency``
requests, ``concurrency`` at a time, through BudgetMiddleware + PostgresUsageStore; the app
records one token per request it serves. Then it waits out the lookup cache (``cache_ttl``) and
sends one more wave of ``concurrency`` requests, the tail: on a fast machine the whole stream can
fit inside one cache window, and the tail is what shows that a crossed budget is then enforced.
Prints JSON: the status counts of the stream and of the tail, the wall-clock time each served
request was admitted, and when this process first saw the counter reach the budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
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

    admitted: list[float] = []
    crossed: list[float] = []

    async def spend_one_token(scope: Scope, receive: Receive, send: Send) -> None:
        admitted.append(time.time())  # wall clock: comparable across the processes
        state = await store.record_usage(Usage(org_id=org_id, model="m", prompt_tokens=1))
        if state.exceeded and not crossed:
            crossed.append(time.time())
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
    remaining = [rounds * concurrency]

    async def client_loop(client: httpx.AsyncClient) -> None:
        # a steady stream, ``concurrency`` requests in flight, rather than waves: the budget is
        # crossed mid-stream, so the cache window shows in when the last request is admitted
        while remaining[0] > 0:
            remaining[0] -= 1
            response = await client.post("/v1/chat/completions")
            statuses[response.status_code] += 1

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        await asyncio.sleep(cache_ttl + 0.1)
        tail = await asyncio.gather(*(client.post("/v1/chat/completions") for _ in range(concurrency)))
    await pool.close()
    result = {
        "statuses": {str(k): v for k, v in statuses.items()},
        "tail": {str(k): v for k, v in Counter(r.status_code for r in tail).items()},
        "admitted": admitted,
        "crossed": crossed,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    url, org, rounds, concurrency, ttl, start = sys.argv[1:7]
    asyncio.run(asyncio.wait_for(run(url, org, int(rounds), int(concurrency), float(ttl), start), 120))
