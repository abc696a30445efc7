"""API-key change events: PostgreSQL ``LISTEN/NOTIFY`` feeding the verifiers' key caches.

Migration ``0005_api_key_events`` puts a trigger on ``api_keys`` that ``pg_notify``\\ s the key
id on the channel :data:`API_KEY_EVENTS_CHANNEL` whenever a row is inserted, deleted, or has
a column a verifier caches updated (never for ``last_used_at``), and ``'*'`` after a
``TRUNCATE``. Whoever changes a key (the kit, an admin tool, ``psql``), every process hears it
as soon as the transaction commits.

:class:`APIKeyEventListener` holds ONE dedicated autocommit connection per process (not from
the pool: a listening connection must stay checked out for ever), named by
``application_name`` so it can be found in ``pg_stat_activity``. It reconnects by itself with
a bounded, jittered backoff, and on every (re)connection it flushes the caches it feeds:
events sent while it was not listening are lost, so whatever was cached then may be stale.
While PostgreSQL is down the caches are left alone: cached keys keep working until their TTL.

It knows the verifier only as an :class:`~asgi_kit.auth.stores.APIKeyInvalidator`
(``invalidate(key_id)``, ``invalidate_all()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import psycopg
from pydantic import SecretStr

from asgi_kit._asgi.options import check_number, check_str
from asgi_kit.database.postgres import postgres_conninfo

if TYPE_CHECKING:
    from asgi_kit.auth.stores import APIKeyInvalidator

logger = logging.getLogger("asgi_kit.database")

#: the channel the ``0005_api_key_events`` trigger notifies
API_KEY_EVENTS_CHANNEL: Final = "asgi_kit_api_keys"
#: the payload meaning "every key may have changed" (sent after a TRUNCATE)
ALL_KEYS: Final = "*"
_NOT_CONNECTED: Final = (psycopg.Error, OSError, TimeoutError)


class APIKeyEventListener:
    """Listen for API-key changes and invalidate the verifiers' caches; reconnect by itself.

    Args:
        database_url: the ``postgresql://`` URL of the database holding ``api_keys`` (the
            pool's); never logged.
        invalidators: the verifiers (anything with ``invalidate``/``invalidate_all``) to tell.
        application_name: how the connection shows in ``pg_stat_activity``.
        ping_interval: seconds without a notification after which the connection is checked
            with ``SELECT 1`` (a silently dead connection is found within about twice this).
        reconnect_delay: the first wait after a failed connection attempt; doubled on each
            further failure (with jitter) up to ``max_reconnect_delay``.
        max_reconnect_delay: the longest wait between attempts.
        connect_timeout: seconds a connection attempt may take.

    Start it in the lifespan, after the pool (``await listener.start()``, ``await
    listener.aclose()``, or ``async with listener:``). ``connected`` tells whether it is
    listening now; ``connections`` counts the connections made (1 + reconnections).
    """

    def __init__(
        self,
        database_url: str | SecretStr,
        invalidators: APIKeyInvalidator | Sequence[APIKeyInvalidator],
        *,
        application_name: str = "asgi_kit.api_key_events",
        ping_interval: float = 30.0,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self._conninfo = postgres_conninfo(database_url)
        targets: list[Any] = list(invalidators) if isinstance(invalidators, list | tuple) else [invalidators]
        if not targets or not all(_is_invalidator(target) for target in targets):
            raise TypeError("invalidators must be one or more objects with invalidate() and invalidate_all()")
        self._invalidators: tuple[APIKeyInvalidator, ...] = tuple(targets)
        check_str("application_name", application_name, allow_empty=True)
        if not application_name.isprintable() or len(application_name) > 63:
            raise ValueError(
                f"application_name must be printable and at most 63 characters, got {application_name!r}"
            )
        self.application_name = application_name
        self._ping = check_number("ping_interval", ping_interval, exclusive_minimum=0)
        self._delay = check_number("reconnect_delay", reconnect_delay, exclusive_minimum=0)
        self._max_delay = check_number("max_reconnect_delay", max_reconnect_delay, exclusive_minimum=0)
        if self._max_delay < self._delay:
            raise ValueError("max_reconnect_delay must be >= reconnect_delay")
        connect_seconds = check_number("connect_timeout", connect_timeout, exclusive_minimum=0)
        self._connect_timeout = max(math.ceil(connect_seconds), 1)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()  # bound to a loop on first wait, not here
        self.connections = 0

    def __repr__(self) -> str:
        return f"APIKeyEventListener(application_name={self.application_name!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        """Whether the listener is connected and listening now."""
        return self._listening.is_set()

    async def start(self) -> None:
        """Start listening in the background (returns at once; see :meth:`wait_connected`)."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="asgi_kit.api_key_events")

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until the listener is listening, at most ``timeout`` seconds; whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._listening.wait()
        return self.connected

    async def aclose(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> APIKeyEventListener:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        failures = 0
        down_since: float | None = None
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name=self.application_name,
                    connect_timeout=self._connect_timeout,
                )
            except _NOT_CONNECTED as exc:
                if failures == 0:
                    logger.warning("API key events: cannot connect (%s); retrying", type(exc).__name__)
                    down_since = down_since or time.monotonic()
                failures += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            try:
                async with conn:
                    await self._listen(conn, down_since)
            except _NOT_CONNECTED as exc:
                logger.warning("API key events: connection lost (%s); reconnecting", type(exc).__name__)
            finally:
                self._listening.clear()
            failures = 0
            down_since = time.monotonic()
            # The first reconnection is immediate-ish (the server may only have dropped us).
            await asyncio.sleep(self._backoff(0))

    async def _listen(self, conn: psycopg.AsyncConnection[Any], down_since: float | None) -> None:
        await conn.execute(f"LISTEN {API_KEY_EVENTS_CHANNEL}")
        # Listening first, then flushing: an event from now on is heard, and anything cached
        # before (possibly while changes went unheard) is asked again.
        self._flush()
        self.connections += 1
        self._listening.set()
        if self.connections == 1:
            logger.info("API key events: listening (application_name=%s)", self.application_name)
        else:
            logger.warning(
                "API key events: listening again after %.1f s; key caches flushed",
                time.monotonic() - (down_since or time.monotonic()),
            )
        while True:
            async for notify in conn.notifies(timeout=self._ping):
                self._dispatch(notify.payload)
            # Quiet for a while: make sure the connection is still alive. Notifications that
            # arrive meanwhile are kept by psycopg and yielded by the next notifies().
            async with asyncio.timeout(self._ping):
                await conn.execute("SELECT 1")

    def _dispatch(self, payload: str) -> None:
        if payload == ALL_KEYS:
            self._flush()
            return
        for invalidator in self._invalidators:
            invalidator.invalidate(payload)

    def _flush(self) -> None:
        for invalidator in self._invalidators:
            invalidator.invalidate_all()

    def _backoff(self, failures: int) -> float:
        delay = min(self._max_delay, self._delay * 2.0 ** min(failures, 30))
        return delay * random.uniform(0.5, 1.0)  # jitter: workers do not reconnect in step


def _is_invalidator(value: object) -> bool:
    return callable(getattr(value, "invalidate", None)) and callable(getattr(value, "invalidate_all", None))


__all__ = ["ALL_KEYS", "API_KEY_EVENTS_CHANNEL", "APIKeyEventListener"]
