"""API keys: a recognisable format with a checksum, hashed at rest, compared in constant time.

Format (every part base62, parts joined by ``_``)::

    sk_live_<key id: 12>_<secret: 43>_<checksum: 6>
    prefix  environment       >= 256 bits         CRC32 of everything before it

The key id is public (it is how the store looks the key up: never by secret); the secret
has at least 256 bits of entropy; the checksum lets a mistyped, truncated or invented key
be refused without touching the store (secret scanners can use it too). It is not a MAC: a
deliberate forger can compute it, and is then stopped by the hash comparison.

At rest a key is ``hash_api_key(key)``: SHA-256 hex, or HMAC-SHA256 hex under a server-side
pepper with a version number (``APIKeyRecord.pepper_version``; 0 means no pepper), so a
stolen table alone cannot be brute-forced and peppers can rotate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from asgi_kit._asgi.options import check_callable, check_instance, check_int, check_number, check_str
from asgi_kit.auth.errors import CredentialStoreUnavailableError, InvalidAPIKeyError
from asgi_kit.auth.keycache import APIKeyRecordCache
from asgi_kit.auth.stores import APIKeyEventSource, APIKeyRecord, APIKeyStore

logger = logging.getLogger("asgi_kit.auth")

BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_ID_LENGTH: Final = 12
SECRET_LENGTH: Final = 43  # 62**43 > 2**256
CHECKSUM_LENGTH: Final = 6
MAX_API_KEY_LENGTH: Final = 2 * 16 + KEY_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH + 4
_LABEL: Final = re.compile(r"[a-z][a-z0-9]{0,15}")
_KEY: Final = re.compile(
    rb"([a-z][a-z0-9]{0,15})_([a-z][a-z0-9]{0,15})_([0-9A-Za-z]{12})_([0-9A-Za-z]{43})_([0-9A-Za-z]{6})"
)
# A fixed dummy, hashed when the key id is unknown so that path costs what a wrong secret costs.
_DUMMY_HASH: Final = hashlib.sha256(b"asgi-kit/unknown-key").hexdigest().encode("ascii")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def _checksum(body: str | bytes) -> str:
    data = body.encode("ascii") if isinstance(body, str) else body
    return _base62(zlib.crc32(data), CHECKSUM_LENGTH)


def _check_label(name: str, value: object) -> str:
    if _LABEL.fullmatch(check_str(name, value)) is None:
        raise ValueError(f"{name} must match [a-z][a-z0-9]{{0,15}}, got {value!r}")
    return str(value)


def generate_api_key(prefix: str = "sk", *, environment: str = "live") -> str:
    """A new API key (show it once; store only :func:`hash_api_key` of it)."""
    _check_label("prefix", prefix)
    _check_label("environment", environment)
    key_id = _base62(secrets.randbits(72), KEY_ID_LENGTH)
    secret = _base62(secrets.randbits(256), SECRET_LENGTH)
    body = f"{prefix}_{environment}_{key_id}_{secret}_"
    return body + _checksum(body)


@dataclass(frozen=True, slots=True)
class ParsedAPIKey:
    """The parts of a well-formed key. The secret stays out of ``repr``."""

    prefix: str
    environment: str
    key_id: str
    secret: str = field(repr=False)


def _match_key(raw: bytes, prefix: bytes | None, environment: bytes | None) -> re.Match[bytes]:
    """The regex match of a well-formed key with a good checksum (groups: prefix, env, id, secret, sum)."""
    if len(raw) > MAX_API_KEY_LENGTH:
        raise InvalidAPIKeyError("malformed API key")
    match = _KEY.fullmatch(raw)
    if match is None:
        raise InvalidAPIKeyError("malformed API key")
    if not hmac.compare_digest(_checksum(raw[: match.start(5)]).encode("ascii"), match.group(5)):
        raise InvalidAPIKeyError("API key checksum mismatch")
    if prefix is not None and match.group(1) != prefix:
        raise InvalidAPIKeyError("wrong API key prefix")
    if environment is not None and match.group(2) != environment:
        raise InvalidAPIKeyError("wrong API key environment")
    return match


def parse_api_key(
    key: str | bytes, *, prefix: str | None = None, environment: str | None = None
) -> ParsedAPIKey:
    """Check the format and checksum (no store involved).

    Raises:
        InvalidAPIKeyError: malformed, wrong prefix or environment, or checksum mismatch.
    """
    raw = key.encode("ascii", "replace") if isinstance(key, str) else key
    match = _match_key(
        raw,
        None if prefix is None else prefix.encode("ascii", "replace"),
        None if environment is None else environment.encode("ascii", "replace"),
    )
    return ParsedAPIKey(*(part.decode("ascii") for part in match.group(1, 2, 3, 4)))


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def hash_api_key(key: str | bytes, *, pepper: str | bytes | None = None) -> str:
    """SHA-256 hex of the key, or HMAC-SHA256 hex under ``pepper`` when one is given."""
    if pepper is None:
        return hashlib.sha256(_as_bytes(key)).hexdigest()
    return hmac.new(_as_bytes(pepper), _as_bytes(key), hashlib.sha256).hexdigest()


def validate_api_key(key: str | bytes, key_hash: str, *, pepper: str | bytes | None = None) -> bool:
    """Whether ``key`` hashes to ``key_hash``, compared in constant time."""
    computed = hash_api_key(key, pepper=pepper).encode("ascii")
    return hmac.compare_digest(computed, key_hash.encode("utf-8", "replace"))


class APIKeyVerifier:
    """Check a presented key against an :class:`APIKeyStore`, remembering what the store said.

    Args:
        store: where records are looked up by key id.
        prefix: the key prefix this service issues (others are refused before the store).
        environment: accept only this environment (``"live"``, ``"test"``); ``None`` accepts any.
        peppers: pepper by version, for records with ``pepper_version >= 1``.
        last_used_interval: at most one ``touch_last_used`` per key per this many seconds;
            it runs in the background and its failure never fails a request.
        clock: seconds since the epoch (injectable): expiry, revocation and cache TTLs.
        cache_size: key records kept in memory at most (0 disables the record cache).
        cache_ttl: seconds a record is kept (0 disables); the safety net behind a change feed
            (:meth:`invalidate`, ``asgi_kit.database.APIKeyEventListener``).
        negative_cache_size: unknown key ids remembered at most (0 disables).
        negative_ttl: seconds an unknown key id is remembered (0 disables).

    A cache hit costs no store query, and the presented key is still compared with the
    record's hash (constant time), its expiry and its revocation, every time. Concurrent
    misses of one key id share one query. When the store fails, cached keys keep working
    until their TTL and other keys get :class:`CredentialStoreUnavailableError` (a 503).

    ``lookups_skipped`` counts keys refused without touching the store; ``store_lookups``
    counts the store queries made.
    """

    def __init__(
        self,
        store: APIKeyStore,
        *,
        prefix: str = "sk",
        environment: str | None = None,
        peppers: Mapping[int, str | bytes] | None = None,
        last_used_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        negative_cache_size: int = 10_000,
        negative_ttl: float = 5.0,
    ) -> None:
        self.store = check_instance(
            "store", store, APIKeyStore, "an APIKeyStore (async get_api_key, touch_last_used)"
        )
        self.prefix = _check_label("prefix", prefix)
        self.environment = None if environment is None else _check_label("environment", environment)
        self._peppers: dict[int, bytes] = {}
        for version, pepper in (peppers or {}).items():
            check_int("peppers versions", version, minimum=1)  # 0 means no pepper
            if len(_as_bytes(pepper)) < 32:
                raise ValueError("peppers: each pepper must be at least 32 bytes")
            self._peppers[version] = _as_bytes(pepper)
        self._interval = check_number("last_used_interval", last_used_interval, minimum=0)
        self._clock = check_callable("clock", clock)
        self._prefix_bytes = prefix.encode("ascii") + b"_"
        self._prefix_label = prefix.encode("ascii")
        self._environment_label = None if environment is None else environment.encode("ascii")
        self._cache = APIKeyRecordCache(
            store.get_api_key,
            size=check_int("cache_size", cache_size, minimum=0),
            ttl=check_number("cache_ttl", cache_ttl, minimum=0),
            negative_size=check_int("negative_cache_size", negative_cache_size, minimum=0),
            negative_ttl=check_number("negative_ttl", negative_ttl, minimum=0),
            clock=clock,
        )
        self._records = self._cache.records
        self._last_touch: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.lookups_skipped = 0
        if isinstance(store, APIKeyEventSource):
            store.subscribe(self)  # a store that reports its own changes keeps the cache exact

    def __repr__(self) -> str:
        versions = sorted(self._peppers)
        return f"APIKeyVerifier(prefix={self.prefix!r}, environment={self.environment!r}, peppers={versions})"

    @property
    def store_lookups(self) -> int:
        """Store queries made so far (a cache hit, a joined miss or a refused format makes none)."""
        return self._cache.lookups

    def invalidate(self, key_id: str) -> None:
        """Forget what is cached about ``key_id``: its next request asks the store."""
        self._cache.invalidate(key_id)

    def invalidate_all(self) -> None:
        """Forget every cached key (changes may have been missed): each asks the store again."""
        self._cache.invalidate_all()

    def looks_like_key(self, value: bytes) -> bool:
        """Whether a bearer credential is meant as one of our API keys (by its prefix)."""
        return value.startswith(self._prefix_bytes)

    async def verify(self, key: bytes) -> APIKeyRecord:
        """The record of a valid, unexpired, unrevoked key.

        Raises:
            InvalidAPIKeyError: for every refused key (the caller answers the same 401).
            CredentialStoreUnavailableError: the store raised (the caller answers 503).
        """
        try:
            key_id = _match_key(key, self._prefix_label, self._environment_label).group(3)
        except InvalidAPIKeyError:
            self.lookups_skipped += 1
            raise
        record = self._records.get(key_id)  # a hit: no store query
        if record is None:
            try:
                record = await self._cache.load(key_id)
            except Exception as exc:
                logger.warning("API key store unavailable (%s)", type(exc).__name__)
                raise CredentialStoreUnavailableError("API key store unavailable") from exc
            if record is None or record.key_id.encode("ascii", "replace") != key_id:
                hmac.compare_digest(hash_api_key(key).encode("ascii"), _DUMMY_HASH)
                raise InvalidAPIKeyError("invalid API key")
        if record.pepper_version == 0:
            pepper = None
        else:
            pepper = self._peppers.get(record.pepper_version)
            if pepper is None:
                logger.warning(
                    "API key %s uses unknown pepper version %d", record.key_id, record.pepper_version
                )
                raise InvalidAPIKeyError("invalid API key")
        if not validate_api_key(key, record.key_hash, pepper=pepper):
            raise InvalidAPIKeyError("invalid API key")
        now = self._clock()
        if record.revoked_at is not None and record.revoked_at.timestamp() <= now:
            raise InvalidAPIKeyError("invalid API key")
        if record.expires_at is not None and record.expires_at.timestamp() <= now:
            raise InvalidAPIKeyError("invalid API key")
        self._maybe_touch(record.key_id, now)
        return record

    def _maybe_touch(self, key_id: str, now: float) -> None:
        last = self._last_touch.get(key_id)
        if last is not None and now - last < self._interval:
            return
        if len(self._last_touch) >= 100_000:  # bounded: forgetting only means an extra touch
            self._last_touch.clear()
        self._last_touch[key_id] = now
        task = asyncio.get_running_loop().create_task(
            self._touch(key_id, datetime.fromtimestamp(now, tz=UTC))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, key_id: str, when: datetime) -> None:
        try:
            await self.store.touch_last_used(key_id, when)
        except Exception as exc:  # never fails a request: the key was valid
            logger.warning("touch_last_used failed for API key %s (%s)", key_id, type(exc).__name__)

    async def drain(self) -> None:
        """Wait for pending last-used updates (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)


__all__ = [
    "APIKeyVerifier",
    "ParsedAPIKey",
    "generate_api_key",
    "hash_api_key",
    "parse_api_key",
    "validate_api_key",
]
