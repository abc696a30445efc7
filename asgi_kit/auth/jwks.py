"""An asynchronous JWKS key set for verify-only services.

Unlike PyJWT's ``PyJWKClient`` (which does blocking ``urllib`` I/O inline), keys are fetched
with aiohttp on the event loop, and:

- a known ``kid`` is answered from memory, always; once the set is older than ``cache_ttl`` a
  refresh starts in the background, so a slow or hanging JWKS server never delays requests
  whose key is already known;
- an unknown ``kid`` triggers at most one fetch per ``cooldown`` seconds, and concurrent
  misses share that one fetch (so a flood of invented ``kid`` values costs one request);
- a failed or malformed fetch keeps the last good key set.

Only asymmetric keys (RS256, ES256, EdDSA, Ed25519) are accepted from a JWKS, each bound to the one
algorithm it declares (or the configured one when it declares none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Final

from asgi_kit._asgi.optional import require
from asgi_kit._asgi.options import check_choice, check_number, check_str, check_strings
from asgi_kit.auth._jose import strict_json_object
from asgi_kit.auth.errors import CredentialStoreUnavailableError, MalformedTokenError
from asgi_kit.auth.keys import (
    ASYMMETRIC_ALGORITHMS,
    PYJWT_NAMES,
    VerificationKey,
    algorithm_impl,
    check_key_strength,
)

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger("asgi_kit.auth")

MAX_JWKS_BYTES: Final = 512 * 1024
MAX_KID_LENGTH: Final = 256


class JWKSKeySet:
    """Verification keys from a JWKS URL, cached and refreshed without blocking the loop.

    Args:
        url: the ``https://.../jwks.json`` address.
        algorithms: the algorithms a key may be bound to (a subset of RS256, ES256, EdDSA, Ed25519).
        default_algorithm: used for a JWK that declares no ``alg``.
        cache_ttl: seconds after which the set is refreshed in the background.
        cooldown: minimum seconds between two fetches triggered by unknown ``kid`` values.
        timeout: total seconds for one fetch.
        session: an ``aiohttp.ClientSession`` to use (not closed by :meth:`aclose`); by
            default one is created on first use, on the running loop.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Collection[str] = ("RS256", "ES256", "EdDSA", "Ed25519"),
        default_algorithm: str | None = None,
        cache_ttl: float = 300.0,
        cooldown: float = 30.0,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not check_str("jwks_url", url).startswith(("https://", "http://")):
            raise ValueError(f"jwks_url must be an http(s) URL, got {url!r}")
        allowed = frozenset(check_strings("JWKS algorithms", algorithms))
        if not allowed or not allowed <= ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"JWKS algorithms must be a non-empty subset of {sorted(ASYMMETRIC_ALGORITHMS)}")
        if default_algorithm is not None:
            check_choice("default_algorithm", default_algorithm, sorted(allowed))
        cache_ttl = check_number("jwks_cache_ttl", cache_ttl, exclusive_minimum=0)
        cooldown = check_number("jwks_cooldown", cooldown, exclusive_minimum=0)
        timeout = check_number("jwks_timeout", timeout, exclusive_minimum=0)
        # aiohttp is imported here, not with the package: it is 10 MiB of memory that a service
        # without a JWKS never uses.
        require("aiohttp", "jwt")
        import aiohttp

        self.url = url
        self._allowed = allowed
        self._default_algorithm = default_algorithm
        self._cache_ttl = float(cache_ttl)
        self._cooldown = float(cooldown)
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._loaded = False
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        #: how many fetches were started (tests read it to prove coalescing)
        self.fetch_count = 0

    def __repr__(self) -> str:
        return f"JWKSKeySet({self.url!r}, keys={sorted(self._keys)!r})"

    @property
    def algorithms(self) -> frozenset[str]:
        return self._allowed

    def cached(self, kid: str) -> VerificationKey | None:
        """The key for ``kid`` if it is already known (no I/O)."""
        return self._keys.get(kid)

    async def get_key(self, kid: str) -> VerificationKey | None:
        """The key for ``kid``, fetching the set if the ``kid`` is unknown and the cooldown allows.

        Raises:
            CredentialStoreUnavailableError: no key set was ever loaded and fetching failed.
        """
        key = self._keys.get(kid)
        now = self._clock()
        if key is not None:
            if now - self._fetched_at >= self._cache_ttl and self._inflight is None:
                self._start_fetch(now)  # stale-while-revalidate: never wait for it
            return key
        if self._inflight is None:
            if self._last_attempt is not None and now - self._last_attempt < self._cooldown:
                self._raise_if_never_loaded()
                return None
            self._start_fetch(now)
        inflight = self._inflight
        if inflight is None:  # _start_fetch always sets it; checked without assert (python -O)
            raise RuntimeError("JWKS fetch was not started")
        await asyncio.shield(inflight)
        self._raise_if_never_loaded()
        return self._keys.get(kid)

    async def refresh(self) -> bool:
        """Fetch now (joining a fetch in flight); ``True`` when a key set was loaded."""
        if self._inflight is None:
            self._start_fetch(self._clock())
        inflight = self._inflight
        if inflight is None:  # _start_fetch always sets it; checked without assert (python -O)
            raise RuntimeError("JWKS fetch was not started")
        return await asyncio.shield(inflight)

    async def aclose(self) -> None:
        """Cancel a fetch in flight and close the session this key set created."""
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _raise_if_never_loaded(self) -> None:
        if not self._loaded:
            raise CredentialStoreUnavailableError("the JWKS key set could not be loaded")

    def _start_fetch(self, now: float) -> None:
        self._last_attempt = now
        self.fetch_count += 1
        self._inflight = asyncio.get_running_loop().create_task(self._fetch())

    async def _fetch(self) -> bool:
        try:
            body = await self._download()
            keys = self._parse(body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure keeps the last good set
            logger.warning(
                "JWKS fetch from %s failed (%s); keeping %d cached keys",
                self.url,
                type(exc).__name__,
                len(self._keys),
            )
            return False
        finally:
            self._inflight = None
        self._keys = keys
        self._loaded = True
        self._fetched_at = self._clock()
        return True

    async def _download(self) -> bytes:
        if self._session is None:
            import aiohttp  # already imported by __init__

            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(self.url, timeout=self._timeout, allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"JWKS answered {response.status}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_JWKS_BYTES:  # bounded: a hostile or broken server cannot exhaust memory
                    raise ValueError("JWKS document too large")
                chunks.append(chunk)
            return b"".join(chunks)

    def _parse(self, body: bytes) -> dict[str, VerificationKey]:
        try:
            document = strict_json_object(body, "JWKS")
        except MalformedTokenError:
            raise ValueError("JWKS is not a JSON object") from None
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError("JWKS has no 'keys' list")
        keys: dict[str, VerificationKey] = {}
        for entry in entries:
            key = self._parse_key(entry)
            if key is not None and key.kid not in keys:
                keys[key.kid] = key
        return keys

    def _parse_key(self, entry: Any) -> VerificationKey | None:
        if not isinstance(entry, dict):
            return None
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            return None
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct" or "d" in entry:
            return None  # never a symmetric or private key from a public document
        algorithm = entry.get("alg", self._default_algorithm)
        if algorithm not in self._allowed:
            return None
        from jwt import PyJWK  # PyJWT is imported on first asymmetric use (see keys.py)

        try:
            jwk = PyJWK(entry, algorithm=PYJWT_NAMES.get(algorithm, algorithm))
            check_key_strength(algorithm, jwk.key, f"JWKS key {kid!r}")
        except Exception:  # PyJWK raises several unrelated types (PyJWKError, InvalidKeyError, ...)
            logger.warning("JWKS key %r skipped: unusable for %s", kid[:64], algorithm)
            return None
        return VerificationKey(kid=kid, algorithm=algorithm, impl=algorithm_impl(algorithm), key=jwk.key)


__all__ = ["JWKSKeySet"]
