"""``RateLimitMiddleware``: requests and tokens per window, per key, organization or any subject."""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

from asgi_kit._asgi.options import (
    check_bool,
    check_callable,
    check_instance,
    check_int,
    check_number,
    check_str,
)
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors import (
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    OpenAIRoutes,
    ProblemDetails,
    write_problem_details,
)
from asgi_kit.ratelimit.algorithm import NEVER, Check, CheckResult, Decision
from asgi_kit.ratelimit.backends import InMemoryBackend, RateLimitBackend
from asgi_kit.ratelimit.duration import format_duration
from asgi_kit.ratelimit.estimate import estimate_openai_tokens, read_body_prefix
from asgi_kit.ratelimit.limits import BUILTIN_SUBJECTS, Quota, QuotaLookup, SubjectFunc
from asgi_kit.ratelimit.reservation import RESERVATION_STATE_KEY, TokenReservation

logger = logging.getLogger("asgi_kit.ratelimit")

TokenEstimate = Callable[[Scope, bytes], int]
REQUESTS: Final = 0
TOKENS: Final = 1
_DIMENSION: Final = ("requests", "tokens")
_HEADER_NAMES: Final = tuple(
    (
        f"x-ratelimit-limit-{d}".encode(),
        f"x-ratelimit-remaining-{d}".encode(),
        f"x-ratelimit-reset-{d}".encode(),
    )
    for d in _DIMENSION
)
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_LIMITED: Final = frozenset({"http", "websocket"})
_KNOWN_CHECKS: Final = 10_000
_UNAVAILABLE: Final = SERVICE_UNAVAILABLE.with_detail("The rate limiter is temporarily unavailable")
_LOG_INTERVAL: Final = 1.0


def _duration(milliseconds: int) -> bytes:
    return format_duration(milliseconds).encode("ascii")


class RateLimitMiddleware:
    """Limit requests and tokens per window for each API key, organization or other subject.

    Place it after ``AuthMiddleware`` (the built-in subjects read the principal it stores) and
    before the app or proxy that spends tokens; a request with no subject (anonymous, when only
    keys are limited) passes untouched, as do lifespan scopes and ``exclude_paths``.

    Every limited response carries OpenAI's headers for each limited dimension:
    ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
    ``x-ratelimit-reset-requests`` (a duration such as ``1s`` or ``6m0s``), and the same for
    ``tokens``; when several subjects are limited, the headers describe the tightest one. A
    refusal is ``429`` with ``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms``,
    and no ``x-should-retry: false``: clients should retry after the delay. Its body is a
    problem (``code: "rate_limit_exceeded"``) or, on ``openai_paths`` routes, OpenAI's
    ``{"error": {"type": "requests"|"tokens", "code": "rate_limit_exceeded"}}``. A request
    larger than a whole window's token limit can never pass: its 429 says so, with
    ``x-should-retry: false``. A refused websocket handshake is closed with 1008.

    Tokens are taken when the request starts: ``token_estimate(scope, body)`` (by default the
    prompt's size plus ``max_tokens``) reads the request body, at most ``max_estimate_body``
    bytes, and replays it to the app; only requests that a token quota applies to are read.
    The reservation is in ``scope["state"]["ratelimit_reservation"]`` (see
    :func:`~asgi_kit.ratelimit.get_token_reservation`); settle it with the real total
    (``reservation.settle(tokens)``, as the usage meter does) and the count is corrected.

    When the backend fails, ``fail_open=True`` (the default) lets the request through without
    headers, ``fail_open=False`` answers ``503`` with ``Retry-After: 1``; either way the failure is
    counted in :attr:`backend_errors` and logged at most once a second, and the next request
    tries the backend again. A broken ``quota_lookup`` falls back to the configured quota.

    Args:
        app: the ASGI app to protect.
        requests_per_minute: requests per window for each API key (``quotas["key"]``).
        tokens_per_minute: tokens per window for each API key.
        quotas: the quota per subject kind, e.g. ``{"key": Quota(600, 150_000), "org":
            Quota(tokens=1_000_000)}``; every kind listed is checked.
        subjects: more subject kinds: name -> ``(scope) -> str | None``.
        quota_lookup: ``(kind, subject id, scope) -> Quota | None`` (sync or async): a quota from
            the subject's record, ``None`` for the configured one.
        backend: where counts live; :class:`~asgi_kit.ratelimit.InMemoryBackend` by default.
        window: the window's length in seconds; quotas count per window (60 s: per minute).
        token_estimate: ``(scope, body) -> tokens`` to reserve.
        default_completion_tokens: the allowance reserved when a request gives no ``max_tokens``.
        max_estimate_body: bytes of request body read for the estimate, at most.
        fail_open: when the backend fails, let the request through (``True``) or answer ``503``.
        openai_paths: ``True`` for OpenAI's error body everywhere, or the paths
            (``PathFilter`` patterns such as ``"/v1/*"``) of the OpenAI-compatible routes.
        exclude_paths: paths never limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        quotas: Mapping[str, Quota] | None = None,
        subjects: Mapping[str, SubjectFunc] | None = None,
        quota_lookup: QuotaLookup | None = None,
        backend: RateLimitBackend | None = None,
        window: float = 60.0,
        token_estimate: TokenEstimate | None = None,
        default_completion_tokens: int = 1000,
        max_estimate_body: int = 1 << 20,
        fail_open: bool = True,
        openai_paths: bool | Sequence[str] = False,
        exclude_paths: Sequence[str] = (),
    ) -> None:
        if requests_per_minute is not None:
            check_int("requests_per_minute", requests_per_minute, minimum=1)
        if tokens_per_minute is not None:
            check_int("tokens_per_minute", tokens_per_minute, minimum=1)
        check_int("max_estimate_body", max_estimate_body, minimum=1)
        check_int("default_completion_tokens", default_completion_tokens, minimum=0)
        check_number("window", window, minimum=0.001, maximum=86_400)
        check_bool("fail_open", fail_open)
        if backend is None:
            backend = InMemoryBackend()
        elif not callable(getattr(backend, "acquire", None)) or not callable(
            getattr(backend, "adjust", None)
        ):
            raise TypeError("backend must be a RateLimitBackend (async acquire(checks), adjust(...))")
        for name, hook in (("quota_lookup", quota_lookup), ("token_estimate", token_estimate)):
            if hook is not None:
                check_callable(name, hook)
        kinds = dict(BUILTIN_SUBJECTS)
        for kind, func in (subjects or {}).items():
            if ":" in check_str("subjects names", kind):
                raise ValueError(f"subjects names must be non-empty strings without ':', got {kind!r}")
            kinds[kind] = check_callable(f"subjects[{kind!r}]", func)
        configured = dict(quotas or {})
        if requests_per_minute is not None or tokens_per_minute is not None:
            if "key" in configured:
                raise ValueError(
                    "give the key's quota once: quotas['key'] or requests_per_minute/tokens_per_minute"
                )
            configured["key"] = Quota(requests_per_minute, tokens_per_minute)
        for kind, quota in configured.items():
            if kind not in kinds:
                raise ValueError(f"quotas names an unknown subject {kind!r}: add it to subjects")
            check_instance(f"quotas[{kind!r}]", quota, Quota, "a Quota")
        self.app = app
        # Without a lookup an unlimited quota can never limit anything: leave its subject out.
        self._plan = tuple(
            (kind, kinds[kind], quota)
            for kind, quota in configured.items()
            if quota_lookup is not None or not quota.unlimited
        )
        tokens_possible = quota_lookup is not None or any(q.tokens for q in configured.values())
        # Requests only, quotas fixed: a subject's check never changes, so each planned kind keeps
        # its subjects' checks (bounded) and a request only looks its own up.
        self._fixed_requests: tuple[tuple[str, SubjectFunc, int, dict[str, Check]], ...] | None = (
            tuple((kind, subject_of, quota.requests or 0, {}) for kind, subject_of, quota in self._plan)
            if not tokens_possible
            else None
        )
        self._lookup = quota_lookup
        self._backend = backend
        nowait = getattr(backend, "acquire_nowait", None)
        self._acquire_nowait: Callable[[Sequence[Check]], Decision] | None = (
            nowait if callable(nowait) else None
        )
        self._window_ms = max(round(window * 1000), 1)
        self._per = "minute" if self._window_ms == 60_000 else f"{format_duration(self._window_ms)} window"
        self._estimate = token_estimate
        self._default_completion = default_completion_tokens
        self._max_body = max_estimate_body
        self._deny_on_error = not fail_open
        self._exclude = PathFilter(exclude_paths)
        self._openai_paths = OpenAIRoutes(openai_paths)
        window_reset = format_duration(self._window_ms).encode("ascii")
        # (reset header) per dimension for the usual admitted answer, "reset in one window"
        self._window_resets = tuple((names[2], window_reset) for names in _HEADER_NAMES)
        self._limit_headers: tuple[dict[int, tuple[bytes, bytes]], ...] = ({}, {})
        self.backend_errors = 0
        """Requests the backend could not decide (a counter for a metrics callback)."""
        self._last_log = -math.inf

    @property
    def backend(self) -> RateLimitBackend:
        return self._backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _LIMITED or self._exclude.matches(scope) or not self._plan:
            await self.app(scope, receive, send)
            return
        checks: list[Check] = []
        window = self._window_ms
        cost = 0
        if self._fixed_requests is not None:
            for kind, subject_of, limit, known in self._fixed_requests:
                subject = subject_of(scope)
                if subject is not None:
                    check = known.get(subject)
                    if check is None:
                        if len(known) >= _KNOWN_CHECKS:
                            known.clear()
                        check = known[subject] = Check(f"{kind}:{subject}:requests", limit, 1, window)
                    checks.append(check)
            if not checks:
                await self.app(scope, receive, send)
                return
            dimensions = [REQUESTS] * len(checks)
            reserving = False
        else:
            planned = await self._quotas(scope)
            if not planned:
                await self.app(scope, receive, send)
                return
            reserving = scope["type"] == "http" and any(q.tokens for _, _, q in planned)
            if reserving:
                receive, cost = await self._reserve(scope, receive)
            dimensions = []
            for kind, subject, quota in planned:
                if quota.requests:
                    checks.append(Check(f"{kind}:{subject}:requests", quota.requests, 1, window))
                    dimensions.append(REQUESTS)
                if quota.tokens:
                    checks.append(Check(f"{kind}:{subject}:tokens", quota.tokens, cost, window))
                    dimensions.append(TOKENS)
        try:
            if self._acquire_nowait is not None:
                decision = self._acquire_nowait(checks)
            else:
                decision = await self._backend.acquire(checks)
        except Exception as exc:  # any backend failure follows the policy: never a 500
            await self._backend_failed(exc, scope, receive, send)
            return
        if not decision.allowed:
            await self._refuse(scope, send, checks, dimensions, decision)
            return
        if reserving:
            tokens = tuple((i, c) for i, c in enumerate(checks) if dimensions[i] == TOKENS)
            scope.setdefault("state", {})[RESERVATION_STATE_KEY] = TokenReservation(
                self._backend, decision, tokens, cost
            )
        if len(checks) == 1:
            headers = self._dimension_headers(dimensions[0], checks[0].limit, decision.results[0])
        else:
            headers = self._headers(checks, dimensions, decision.results)

        # A plain function handing back send's awaitable: no coroutine of its own per message.
        def send_with_rate_limits(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            return send(message)

        await self.app(scope, receive, send_with_rate_limits)

    async def _quotas(self, scope: Scope) -> list[tuple[str, str, Quota]]:
        """``(kind, subject id, quota)`` for every subject this request has and that is limited."""
        planned: list[tuple[str, str, Quota]] = []
        for kind, subject_of, quota in self._plan:
            subject = subject_of(scope)
            if subject is None:
                continue
            if self._lookup is not None:
                quota = await self._looked_up(kind, subject, scope, quota)
            if not quota.unlimited:
                planned.append((kind, subject, quota))
        return planned

    async def _looked_up(self, kind: str, subject: str, scope: Scope, configured: Quota) -> Quota:
        if self._lookup is None:  # only called with a lookup configured; explicit under python -O
            return configured
        try:
            found = self._lookup(kind, subject, scope)
            if inspect.isawaitable(found):
                found = await found
        except Exception as exc:  # a broken hook never breaks the request
            logger.warning("quota_lookup failed (%s); using the configured quota", type(exc).__name__)
            return configured
        return found if isinstance(found, Quota) else configured

    async def _reserve(self, scope: Scope, receive: Receive) -> tuple[Receive, int]:
        """Read the body (bounded) for the token estimate and hand the app a receive that replays it."""
        if scope.get("method") not in _BODY_METHODS:
            return receive, self._tokens(scope, b"")
        replay, body = await read_body_prefix(receive, self._max_body)
        return replay, self._tokens(scope, body)

    def _tokens(self, scope: Scope, body: bytes) -> int:
        if self._estimate is None:
            return estimate_openai_tokens(body, self._default_completion)
        try:
            tokens = self._estimate(scope, body)
        except Exception as exc:  # a broken hook never breaks the request
            logger.warning("token_estimate failed (%s); reserving the default", type(exc).__name__)
            return self._default_completion
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            return self._default_completion
        return tokens

    def _headers(
        self, checks: Sequence[Check], dimensions: Sequence[int], results: Sequence[CheckResult]
    ) -> list[tuple[bytes, bytes]]:
        """OpenAI's headers for each limited dimension, from its tightest check."""
        if len(dimensions) == 1:  # one subject, one dimension (the usual case): nothing to compare
            return self._dimension_headers(dimensions[0], checks[0].limit, results[0])
        best = [-1, -1]  # per dimension: the check with the least remaining
        for i, dimension in enumerate(dimensions):
            current = best[dimension]
            if current < 0 or results[i].remaining < results[current].remaining:
                best[dimension] = i
        headers: list[tuple[bytes, bytes]] = []
        for dimension, i in enumerate(best):
            if i >= 0:
                headers.extend(self._dimension_headers(dimension, checks[i].limit, results[i]))
        return headers

    def _dimension_headers(
        self, dimension: int, limit: int, result: CheckResult
    ) -> list[tuple[bytes, bytes]]:
        remaining, reset_ms = result.remaining, result.reset_ms
        names = _HEADER_NAMES[dimension]
        # Limits repeat (a few quota values): their header is built once, in a bounded cache
        # (looked-up quotas could bring many values).
        known = self._limit_headers[dimension]
        limit_header = known.get(limit)
        if limit_header is None:
            if len(known) > 1024:
                known.clear()
            limit_header = known[limit] = (names[0], str(limit).encode())
        if reset_ms == self._window_ms:
            return [limit_header, (names[1], str(remaining).encode()), self._window_resets[dimension]]
        return [limit_header, (names[1], str(remaining).encode()), (names[2], _duration(reset_ms))]

    async def _refuse(
        self, scope: Scope, send: Send, checks: Sequence[Check], dimensions: Sequence[int], decision: Decision
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "rate limit exceeded"})
            return
        results = decision.results
        # The check that holds the request longest decides the delay (one that never fits, first).
        refused = [i for i, r in enumerate(results) if r.retry_ms]
        worst = max(refused, key=lambda i: math.inf if results[i].retry_ms == NEVER else results[i].retry_ms)
        check, result = checks[worst], results[worst]
        dimension = _DIMENSION[dimensions[worst]]
        kind = check.key.split(":", 1)[0]
        headers = self._headers(checks, dimensions, results)
        if result.retry_ms == NEVER:
            detail = (
                f"Request too large for {dimension} per {self._per} ({kind}): limit {check.limit}, "
                f"requested {check.cost}. Reduce the request's size."
            )
            headers.append((b"x-should-retry", b"false"))
        else:
            detail = (
                f"Rate limit reached for {dimension} per {self._per} ({kind}): limit {check.limit}, "
                f"remaining {result.remaining}, requested {check.cost}. "
                f"Please try again in {format_duration(result.retry_ms)}."
            )
            headers.append((b"retry-after", str(math.ceil(result.retry_ms / 1000)).encode("ascii")))
            headers.append((b"retry-after-ms", str(result.retry_ms).encode("ascii")))
        problem = TOO_MANY_REQUESTS.with_detail(detail).with_extensions(
            code="rate_limit_exceeded", error_type=dimension
        )
        await self._write(scope, send, problem, headers)

    async def _write(
        self, scope: Scope, send: Send, problem: ProblemDetails, headers: list[tuple[bytes, bytes]]
    ) -> None:
        # Rendered like every error of the kit: OpenAI's shape on the routes the app marked
        # (ProblemDetailsMiddleware's openai_paths), or on this layer's own openai_paths.
        openai = self._openai_paths.matches(scope)
        await write_problem_details(send, problem, headers, scope=scope, format="openai" if openai else None)

    async def _backend_failed(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        self.backend_errors += 1
        now = time.monotonic()
        if now - self._last_log >= _LOG_INTERVAL:  # one line a second at most, type only
            self._last_log = now
            logger.warning(
                "rate limits not checked: backend failed (%s), %d request(s) so far; %s",
                type(exc).__name__,
                self.backend_errors,
                "denying (503)" if self._deny_on_error else "allowing",
            )
        if not self._deny_on_error:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011, "reason": "service unavailable"})
        else:
            await self._write(
                scope,
                send,
                _UNAVAILABLE.with_extensions(code="rate_limiter_unavailable", error_type="server_error"),
                [(b"retry-after", b"1")],
            )


__all__ = ["RateLimitMiddleware", "TokenEstimate"]
