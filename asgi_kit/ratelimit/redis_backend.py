"""``RedisBackend``: the sliding-window logs in Redis, shared by every worker and host.

One request is one round trip: a server-side Lua script (sent once, then called by its SHA1
with ``EVALSHA``; redis-py loads it again on ``NOSCRIPT``, after a Redis restart) expires the
old entries, tests every check and counts the request, atomically. Time is Redis's own
(``TIME``), so hosts with skewed clocks still share one window.

Per check the script keeps a sorted set (members ``<id>:<cost>``, scored by the admission time
in milliseconds) and the running total of the costs in it, both expiring a second after the
window (both given the same expiry at each admission; a log that has expired counts 0
whatever its total says). A correction adds a member ``<id>c:<delta>`` with the original admission time, so it
leaves the window with the entry it corrects.

When Redis fails (refused, timed out, a protocol error), :meth:`RedisBackend.acquire` raises
:class:`~asgi_kit.ratelimit.RateLimitBackendError` and, for ``retry_interval`` seconds, fails
again at once without waiting for a connection; then it tries Redis again, so the layer recovers
by itself when Redis comes back. Corrections run in background tasks, at most
``max_pending_adjustments`` at a time (past that they are dropped and counted: the estimate
stands, which only errs towards limiting).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from asgi_kit._asgi.optional import require
from asgi_kit._asgi.options import check_int, check_number, check_str
from asgi_kit.ratelimit.algorithm import Check, CheckResult, Decision
from asgi_kit.ratelimit.backends import RateLimitBackendError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("asgi_kit.ratelimit")

# KEYS: per check, its log (sorted set) and its running total (string).
# ARGV[1]: the request's member id; then per check: limit, cost, window (ms).
# Returns {allowed, then per check: remaining, reset_ms, retry_ms}.
ACQUIRE_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local n = #KEYS / 2
local function cost_of(member)
  return tonumber(string.match(member, ':(%-?%d+)$')) or 0
end
local used = {}
local admit = true
for i = 1, n do
  local log, total = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, cost, window = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local u = 0
  if redis.call('EXISTS', log) == 1 then
    u = tonumber(redis.call('GET', total) or '0')
    local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
    if #expired > 0 then
      for _, member in ipairs(expired) do u = u - cost_of(member) end
      redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
      if redis.call('EXISTS', log) == 0 then u = 0 end
      redis.call('SET', total, u, 'KEEPTTL')
    end
  end
  used[i] = u
  if u + cost > limit then admit = false end
end
local out = {admit and 1 or 0}
for i = 1, n do
  local log, total = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, cost, window = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local u = used[i]
  local retry = 0
  if admit then
    if cost ~= 0 then
      redis.call('ZADD', log, now, id .. ':' .. cost)
      u = u + cost
      redis.call('SET', total, u, 'PX', window + 1000)
      redis.call('PEXPIRE', log, window + 1000)
    end
  elseif u + cost > limit then
    if cost > limit then
      retry = -1
    else
      local need, freed, start = u + cost - limit, 0, 0
      retry = window
      local found = false
      while not found do
        local batch = redis.call('ZRANGE', log, start, start + 63, 'WITHSCORES')
        if #batch == 0 then break end
        for j = 1, #batch, 2 do
          freed = freed + cost_of(batch[j])
          if freed >= need then
            retry = math.max(tonumber(batch[j + 1]) + window - now, 1)
            found = true
            break
          end
        end
        start = start + 64
      end
    end
  end
  local reset = 0
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  if #newest > 0 then reset = math.max(tonumber(newest[2]) + window - now, 0) end
  table.insert(out, math.max(limit - u, 0))
  table.insert(out, reset)
  table.insert(out, retry)
end
table.insert(out, now)
return out
"""

# KEYS: the log and its total; ARGV: member, admission time (ms), delta, window (ms).
# Both keys keep the expiry the latest admission gave them (it covers this older entry).
ADJUST_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stamp, delta, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if stamp <= now - window then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], stamp, ARGV[1] .. ':' .. delta)
redis.call('INCRBY', KEYS[2], delta)
return 1
"""

_LOG_INTERVAL: Final = 1.0


class RedisBackend:
    """Sliding-window logs in Redis (redis-py's asyncio client and its connection pool).

    Args:
        client: a ``redis.asyncio.Redis`` (its pool is shared; :meth:`aclose` leaves it open).
        url: or a Redis URL: the backend makes its own client and pool and closes them in
            :meth:`aclose`. Give exactly one of ``client`` and ``url``.
        key_prefix: prefix of every key the backend writes.
        socket_timeout: seconds one command may take before it counts as a failure (``url`` only).
        max_connections: size of the connection pool (``url`` only).
        retry_interval: seconds after a failure during which requests fail at once instead of
            waiting for Redis; then Redis is tried again.
        max_pending_adjustments: corrections in flight at most; more are dropped and counted.
    """

    def __init__(
        self,
        client: Redis | None = None,
        *,
        url: str | None = None,
        key_prefix: str = "asgi-kit:ratelimit:",
        socket_timeout: float = 0.5,
        max_connections: int = 50,
        retry_interval: float = 0.5,
        max_pending_adjustments: int = 1000,
    ) -> None:
        redis_asyncio = require("redis.asyncio", "ratelimit")
        if (client is None) == (url is None):
            raise ValueError("give exactly one of client and url")
        if url is not None:
            check_str("url", url)
        check_str("key_prefix", key_prefix, allow_empty=True)
        check_number("socket_timeout", socket_timeout, exclusive_minimum=0)
        check_number("retry_interval", retry_interval, minimum=0)
        check_int("max_connections", max_connections, minimum=1)
        check_int("max_pending_adjustments", max_pending_adjustments, minimum=1)
        self._owns_client = client is None
        if client is None:
            client = redis_asyncio.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                max_connections=max_connections,
            )
        self._client: Redis = client
        self._errors: tuple[type[BaseException], ...] = (
            require("redis.exceptions", "ratelimit").RedisError,
            OSError,
            TimeoutError,
        )
        self._prefix = key_prefix
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._adjust = client.register_script(ADJUST_SCRIPT)
        self._retry_interval = float(retry_interval)
        self._down_until = -math.inf
        self._max_pending = max_pending_adjustments
        self._pending: set[asyncio.Task[None]] = set()
        # Member ids: unique across processes (random prefix) and cheap per request (a counter).
        self._id_prefix = os.urandom(6).hex()
        self._ids = itertools.count()
        self.failures = 0
        """Calls that failed (``acquire`` and corrections): a counter for a metrics callback."""
        self.dropped_adjustments = 0
        """Corrections dropped because ``max_pending_adjustments`` were already in flight."""
        self._last_log = -math.inf

    def __repr__(self) -> str:
        return f"RedisBackend(key_prefix={self._prefix!r})"

    @property
    def client(self) -> Redis:
        return self._client

    def _keys(self, checks: Sequence[Check]) -> list[str]:
        keys: list[str] = []
        for check in checks:
            log = self._prefix + check.key
            keys.append(log)
            keys.append(log + ":used")
        return keys

    async def acquire(self, checks: Sequence[Check]) -> Decision:
        if time.monotonic() < self._down_until:
            raise RateLimitBackendError("Redis was unreachable moments ago")
        member = f"{self._id_prefix}{next(self._ids)}"
        args: list[Any] = [member]
        for check in checks:
            args.extend((check.limit, check.cost, check.window_ms))
        try:
            raw = await self._acquire(keys=self._keys(checks), args=args)
        except self._errors as exc:
            self._failed(exc)
            raise RateLimitBackendError("Redis is unreachable") from None
        self._down_until = -math.inf
        values = [int(v) for v in raw]
        results = tuple(
            CheckResult(values[1 + 3 * i], values[2 + 3 * i], values[3 + 3 * i]) for i in range(len(checks))
        )
        return Decision(bool(values[0]), results, (member, values[-1]))

    def adjust(self, decision: Decision, index: int, check: Check, delta: int) -> None:
        if not decision.allowed or decision.handle is None or not delta:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # settled outside the event loop: the estimate stands
            self.dropped_adjustments += 1
            return
        if len(self._pending) >= self._max_pending:
            self.dropped_adjustments += 1
            return
        member, stamp = decision.handle
        keys = self._keys((check,))
        task = loop.create_task(self._run_adjust(keys, [f"{member}c{index}", stamp, delta, check.window_ms]))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _run_adjust(self, keys: list[str], args: list[Any]) -> None:
        try:
            await self._adjust(keys=keys, args=args)
        except self._errors as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        self._down_until = now + self._retry_interval
        # At most one line a second, and the type only: a driver message may name a host.
        if now - self._last_log >= _LOG_INTERVAL:
            self._last_log = now
            logger.warning(
                "rate-limit backend unavailable (%s); %d failure(s) so far", type(exc).__name__, self.failures
            )

    async def aclose(self) -> None:
        """Wait for pending corrections, then close the client if the backend made it."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()


__all__ = ["ACQUIRE_SCRIPT", "ADJUST_SCRIPT", "RedisBackend"]
