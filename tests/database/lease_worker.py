"""One uvicorn worker of the reservation acceptance test (run with ``python -m``).

Serves a bare ASGI completions app on ``PORT``: each ``POST`` reserves its worst case (prompt
bytes + ``max_tokens``) with ``BudgetReservations`` over ``PostgresLeaseStore``, "calls" an
upstream that uses a random amount up to that worst case, records it with
``PostgresUsageStore.record_usage``, then settles. Refused: 429 (OpenAI's ``insufficient_quota``).
``GET /stats`` answers this process's lease statements and reservations. The pool and the
reservations open in the lifespan and close at shutdown (SIGTERM), returning the lease.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

import uvicorn

from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.budget import BudgetReservations, ReservationRefusedError
from asgi_kit.database import PostgresLeaseStore, PostgresUsageStore, new_postgres_pool
from asgi_kit.models import Usage

REFUSED = {
    "error": {
        "message": "budget exceeded",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}


def build(url: str, org_id: str, seed: int, lease_ttl: float = 30.0, upstream_delay: float = 0.05) -> Any:
    state: dict[str, Any] = {}
    rng = random.Random(seed)

    async def respond(send: Send, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def read_body(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def completions(receive: Receive, send: Send) -> None:
        reservations: BudgetReservations = state["reservations"]
        request = json.loads(await read_body(receive))
        prompt = len(request["prompt"].encode())  # a safe upper bound: a token is at least a byte
        try:
            reservation = await reservations.reserve(
                org_id, reservations.worst_case(prompt, request.get("max_tokens"))
            )
        except ReservationRefusedError:
            await respond(send, 429, REFUSED)
            return
        try:
            await asyncio.sleep(rng.uniform(0, upstream_delay))  # the upstream call
            completion = rng.randint(0, reservation.tokens - prompt)
            await state["usage"].record_usage(
                Usage(org_id=org_id, model="m", prompt_tokens=prompt, completion_tokens=completion)
            )
        except BaseException:
            reservation.release()  # nothing was recorded
            raise
        reservation.settle(prompt + completion)
        await respond(send, 200, {"usage": prompt + completion, "reserved": reservation.tokens})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    pool = await new_postgres_pool(url, min_size=2, max_size=10, timeout=20)
                    state["pool"] = pool
                    state["usage"] = PostgresUsageStore(pool)
                    state["reservations"] = BudgetReservations(
                        PostgresLeaseStore(pool), lease_ttl=lease_ttl, idle_return=None
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["reservations"].aclose()
                    await state["pool"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/stats":
            reservations = state["reservations"]
            await respond(
                send, 200, {"statements": reservations.statements, "reservations": reservations.reservations}
            )
            return
        await completions(receive, send)

    return app


if __name__ == "__main__":
    url, org, port, seed = sys.argv[1:5]
    ttl, delay = (float(x) for x in (sys.argv[5:7] or ["30", "0.05"]))
    app = build(url, org, int(seed), lease_ttl=ttl, upstream_delay=delay)
    uvicorn.run(app, host="127.0.0.1", port=int(port), lifespan="on", log_level="warning")
