"""The app ``uvicorn --workers 2`` serves in the key-event test (each worker calls the factory).

API keys from ``PostgresAPIKeyStore`` behind ``AuthMiddleware``, with the verifier's cache fed
by an ``APIKeyEventListener``. Every response, 401s included, carries ``x-worker-pid`` so the
test can tell which worker answered. Configured by the environment the test sets:
``KEY_EVENTS_DATABASE_URL`` and ``KEY_EVENTS_APPLICATION_NAME``.
"""

from __future__ import annotations

import os

from asgi_kit._asgi.lifespan import LifespanHooksMiddleware, answer_lifespan
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.auth import APIKeyVerifier, AuthMiddleware
from asgi_kit.database import (
    APIKeyEventListener,
    PostgresAPIKeyStore,
    create_postgres_pool,
    open_postgres_pool,
)

_PID = str(os.getpid()).encode()


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def with_pid(app: ASGIApp) -> ASGIApp:
    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-worker-pid", _PID)]
            await send(message)

        await app(scope, receive, send_with_pid if scope["type"] == "http" else send)

    return tagged


def create_app() -> ASGIApp:
    url = os.environ["KEY_EVENTS_DATABASE_URL"]
    pool = create_postgres_pool(url, min_size=1, max_size=4, timeout=5.0)
    # Unknown keys remembered for a minute: only the INSERT event can make them valid in time.
    verifier = APIKeyVerifier(PostgresAPIKeyStore(pool), negative_ttl=60, last_used_interval=3600)
    listener = APIKeyEventListener(
        url, verifier, application_name=os.environ["KEY_EVENTS_APPLICATION_NAME"], reconnect_delay=0.05
    )

    async def startup() -> None:
        await open_postgres_pool(pool)
        await listener.start()
        await listener.wait_connected(5.0)

    async def shutdown() -> None:
        await listener.aclose()
        await pool.close()

    return LifespanHooksMiddleware(
        with_pid(AuthMiddleware(ok, api_keys=verifier)), on_startup=[startup], on_shutdown=[shutdown]
    )
