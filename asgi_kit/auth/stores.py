"""The pluggable stores of the auth layer: protocols, the API-key record, in-memory versions.

This module imports no optional dependency, so ``asgi_kit.database`` can implement the
protocols (``PostgresAPIKeyStore``, ``PostgresTokenRevocationStore``) against it. Both
protocols are small and async; an implementation signals an outage by raising any
exception, which the middleware turns into a 503 (never a 401).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from asgi_kit._asgi.options import check_int


@dataclass(frozen=True, slots=True)
class APIKeyRecord:
    """One API key as stored: everything but the secret itself.

    ``key_hash`` is ``hash_api_key(key)`` (SHA-256 hex) when ``pepper_version`` is 0, else the
    HMAC-SHA256 hex under the pepper of that version. ``expires_at``/``revoked_at`` are
    timezone-aware; ``scopes`` empty means "whatever the role allows".
    """

    key_id: str
    org_id: str | None
    user_id: str | None
    role: str
    key_hash: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    pepper_version: int = 0
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@runtime_checkable
class APIKeyStore(Protocol):
    """Where API keys live. Looked up by public key id, never by secret."""

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        """The record for ``key_id``, or ``None`` when there is none. Raise on outage."""
        ...

    async def touch_last_used(self, key_id: str, when: datetime) -> None:
        """Record that ``key_id`` was used at ``when`` (called throttled, failures ignored)."""
        ...


@runtime_checkable
class APIKeyInvalidator(Protocol):
    """What is told that key rows changed: the verifier's cache, fed by a change feed.

    ``asgi_kit.database.APIKeyEventListener`` (PostgreSQL ``LISTEN/NOTIFY``) and
    :class:`InMemoryAPIKeyStore` call it; :class:`~asgi_kit.auth.APIKeyVerifier` implements it.
    Both methods are synchronous and cheap: they only drop cache entries.
    """

    def invalidate(self, key_id: str) -> None:
        """Forget what is known about ``key_id`` (it was inserted, changed or deleted)."""
        ...

    def invalidate_all(self) -> None:
        """Forget every key (a bulk change, or changes may have been missed)."""
        ...


@runtime_checkable
class APIKeyEventSource(Protocol):
    """A store that tells invalidators about its own changes (the in-memory store does)."""

    def subscribe(self, invalidator: APIKeyInvalidator) -> None:
        """Call ``invalidator`` on every change from now on (held weakly)."""
        ...


@runtime_checkable
class TokenRevocationStore(Protocol):
    """Revoked JWT ids and refresh-token families, keyed on ``jti``, never the token string.

    ``expires_at`` is when the entry may be forgotten (the token would have expired anyway).
    """

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        """Whether ``jti`` or (when given) its refresh family has been revoked."""
        ...

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        """Revoke one token by its ``jti``."""
        ...

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        """Revoke every token of a refresh family (reuse detected, or logout everywhere)."""
        ...

    async def mark_refresh_used(self, jti: str, family_id: str, expires_at: datetime) -> bool:
        """Atomically mark a refresh token used. ``True`` the first time, ``False`` on reuse."""
        ...


class InMemoryAPIKeyStore:
    """A process-local :class:`APIKeyStore` for tests, development and single-process apps.

    ``lookups`` counts :meth:`get_api_key` calls, so tests can prove that malformed keys never
    reach the store; ``last_used`` holds the last :meth:`touch_last_used` per key. Verifiers
    built on it subscribe to its changes (:class:`APIKeyEventSource`), so :meth:`add`,
    :meth:`revoke` and :meth:`remove` reach their caches at once.
    """

    def __init__(self, records: Iterable[APIKeyRecord] = ()) -> None:
        self._records: dict[str, APIKeyRecord] = {}
        self._subscribers: weakref.WeakSet[APIKeyInvalidator] = weakref.WeakSet()
        self.last_used: dict[str, datetime] = {}
        self.lookups = 0
        for record in records:
            self.add(record)

    def subscribe(self, invalidator: APIKeyInvalidator) -> None:
        """Tell ``invalidator`` about every later change (held weakly: it may be dropped)."""
        self._subscribers.add(invalidator)

    def _changed(self, key_id: str) -> None:
        for invalidator in list(self._subscribers):
            invalidator.invalidate(key_id)

    def add(self, record: APIKeyRecord) -> None:
        """Store (or replace) a record."""
        if not isinstance(record, APIKeyRecord):
            raise TypeError("record must be an APIKeyRecord")
        self._records[record.key_id] = record
        self._changed(record.key_id)

    def revoke(self, key_id: str, when: datetime) -> None:
        """Mark ``key_id`` revoked at ``when``."""
        record = self._records.get(key_id)
        if record is not None:
            self._records[key_id] = replace(record, revoked_at=when)
            self._changed(key_id)

    def remove(self, key_id: str) -> None:
        """Delete ``key_id`` (no error when it is not there)."""
        if self._records.pop(key_id, None) is not None:
            self._changed(key_id)

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        self.lookups += 1
        return self._records.get(key_id)

    async def touch_last_used(self, key_id: str, when: datetime) -> None:
        self.last_used[key_id] = when


class InMemoryTokenRevocationStore:
    """A process-local :class:`TokenRevocationStore`. Entries are dropped once expired.

    Only correct within one process: use the PostgreSQL store when several workers share
    refresh tokens.
    """

    def __init__(self, *, purge_threshold: int = 10_000) -> None:
        self._purge_threshold = check_int("purge_threshold", purge_threshold, minimum=1)
        self._revoked: dict[str, datetime] = {}
        self._families: dict[str, datetime] = {}
        self._used: dict[str, datetime] = {}
        self._lock = asyncio.Lock()

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        if jti in self._revoked:
            return True
        return family_id is not None and family_id in self._families

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        self._put(self._revoked, jti, expires_at)

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        self._put(self._families, family_id, expires_at)

    async def mark_refresh_used(self, jti: str, family_id: str, expires_at: datetime) -> bool:
        async with self._lock:
            if jti in self._used:
                return False
            self._put(self._used, jti, expires_at)
            return True

    def _put(self, table: dict[str, datetime], key: str, expires_at: datetime) -> None:
        table[key] = expires_at
        if len(table) >= self._purge_threshold:
            # Drop only expired entries: forgetting a live one would un-revoke a token.
            now = datetime.now(tz=expires_at.tzinfo)
            for stale in [k for k, v in table.items() if v <= now]:
                del table[stale]


__all__ = [
    "APIKeyEventSource",
    "APIKeyInvalidator",
    "APIKeyRecord",
    "APIKeyStore",
    "InMemoryAPIKeyStore",
    "InMemoryTokenRevocationStore",
    "TokenRevocationStore",
]
