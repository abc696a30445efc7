"""``HTTPClient``: outbound HTTP with retries that cannot turn a blip into an outage or a double charge.

Where it belongs: inside your app (a handler, a background job, the demo gateway's router),
never in the middleware stack. One client per upstream, created at start-up
(``async with HTTPClient(...) as client``), shared by all requests: it owns exactly one
``aiohttp.ClientSession`` and its connection pool.

What it reads and writes: it reads the current request's id (``get_request_id()``) and trace
ids (``get_trace_ids()``) from :mod:`asgi_kit._asgi.context` and sends them as
``X-Request-ID``, ``traceparent`` and ``tracestate`` on every attempt (unless the caller set
them). With a tracer provider (:mod:`asgi_kit.httpclient.spans`) every request sent gets its
own ``CLIENT`` span, a child of the current span, and ``traceparent`` names that span. It logs one record per attempt on the ``asgi_kit.httpclient`` logger (method, URL
without query, status or error class, timing; never headers or bodies) and reports the same
facts to the ``on_attempt`` hook.

Retry rules:
- Connection failures before the request left (refused, DNS, connect timeout) are retried for
  every method. Other transport failures and the statuses in ``RetryPolicy.retry_statuses``
  (408, 429, 500, 502, 503, 504) are retried only for idempotent methods, or for any method
  when an ``idempotency_key`` is given (sent as the same ``Idempotency-Key`` on every attempt),
  or a non-empty ``Idempotency-Key`` header is (per call or among the client's headers).
- ``x-should-retry: false`` vetoes a retry; ``true`` asks for one even for another status.
- ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP-date) set the wait; a wait longer than
  ``max_retry_after`` gives up at once with :class:`RetryAfterTooLong`. Otherwise waits grow
  exponentially with full jitter (``backoff.expo`` + ``backoff.full_jitter``).
- Each attempt has its own timeout and the whole call has an optional ``deadline``; the loop is
  explicit (not a ``backoff`` decorator) so a hung attempt is cut by the timeout, the deadline
  bounds the waits too, and each response is released before the next attempt.
- When retries run out on a retryable status, the last response is returned (call
  ``raise_for_status()``); when they run out on a transport error, that error is raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar, overload

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from asgi_kit._asgi.context import get_request_id, get_trace_ids
from asgi_kit._asgi.options import check_callable, check_instance, check_int, check_number
from asgi_kit.httpclient.errors import (
    AttemptTimeout,
    ConnectError,
    DeadlineExceeded,
    HTTPClientError,
    NetworkError,
    RetryAfterTooLong,
    TooManyRedirects,
    TransportError,
)
from asgi_kit.httpclient.policy import Clock, Limits, RetryPolicy, SystemClock, Timeouts
from asgi_kit.httpclient.response import AttemptRecord, Response, StreamResponse
from asgi_kit.httpclient.retry_after import retry_after_seconds, should_retry_hint
from asgi_kit.httpclient.spans import CallSpans, ClientSpans, error_type_of

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

#: Headers that never follow a redirect to another origin (they carry credentials).
SENSITIVE_HEADERS: Final = frozenset(
    {"authorization", "cookie", "proxy-authorization", "x-api-key", "api-key"}
)
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_UNSET: Final[Any] = object()
_E = TypeVar("_E", bound=HTTPClientError)


@dataclass(slots=True)
class _Call:
    """Everything about one logical call (all its attempts); lives in locals only."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    json: Any
    data: Any
    timeouts: Timeouts
    policy: RetryPolicy
    deadline_at: float | None
    method_retryable: bool
    safe_url: str
    spans: CallSpans | None = None  # the call's client spans; None while spans are off


def _safe_url(url: URL) -> str:
    # Query strings and userinfo can hold secrets (api keys, signed URLs): never logged.
    return str(url.with_query(None).with_fragment(None).with_user(None))


class HTTPClient:
    """An async HTTP client with explicit timeouts, bounded retries and context propagation.

    Args:
        base_url: prefix for relative URLs (``"https://api.example.com/v1"``).
        timeout: seconds one attempt may take, connect to last byte (default 30).
        connect_timeout: seconds to get a connection (default 5).
        read_timeout: longest silence between chunks of a streamed body (default: ``timeout``).
        max_retries: retries after the first attempt (default: ``retry.max_retries``, 3).
        max_retry_after: the longest ``Retry-After`` honoured (default: ``retry``'s, 60).
        retry: the full :class:`RetryPolicy` (statuses, methods, backoff, jitter, give-up hook).
        deadline: seconds the whole call may take, attempts and waits included (default none).
        headers: headers sent on every request.
        limits: connection pool :class:`Limits`.
        follow_redirects: follow 301/302/303/307/308 (credentials dropped across origins).
        max_redirects: redirect hops per attempt (default 10).
        clock: time source and sleeper; pass :class:`VirtualClock` in tests so retries never sleep.
        on_attempt: called with an :class:`AttemptRecord` after each attempt (metrics); an
            exception in it is logged and ignored.
        logger: where per-attempt records go (default ``logging.getLogger("asgi_kit.httpclient")``).
        propagate_context: send ``X-Request-ID``/``traceparent``/``tracestate`` from the context.
        tracer_provider: where the ``CLIENT`` span of each request goes (one per attempt and
            redirect hop, a child of the current span; its id is the ``traceparent`` sent).
            ``None``: OpenTelemetry's global provider, as it is when the client opens; while
            that is unset, or with the no-op provider, no span is made and ``traceparent``
            names the current server span, as without tracing.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        read_timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_after: float | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 10,
        clock: Clock | None = None,
        on_attempt: Callable[[AttemptRecord], object] | None = None,
        logger: logging.Logger | None = None,
        propagate_context: bool = True,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if retry is not None:
            check_instance("retry", retry, RetryPolicy, "a RetryPolicy")
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = replace(policy, max_retries=max_retries)
        if max_retry_after is not None:
            policy = replace(policy, max_retry_after=max_retry_after)
        if deadline is not None:
            check_number("deadline", deadline, exclusive_minimum=0)
        check_int("max_redirects", max_redirects, minimum=0)
        if on_attempt is not None:
            check_callable("on_attempt", on_attempt)
        if limits is not None:
            check_instance("limits", limits, Limits, "a Limits")
        if tracer_provider is not None:
            from opentelemetry.trace import TracerProvider as _Provider  # given one: the API is there

            check_instance(
                "tracer_provider", tracer_provider, _Provider, "an opentelemetry TracerProvider or None"
            )
        self._base_url = URL(base_url) if base_url else None
        if self._base_url is not None and not self._base_url.is_absolute():
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.timeouts = Timeouts(attempt=timeout, connect=connect_timeout, read=read_timeout)
        self.retry = policy
        self.limits = limits or Limits()
        self.deadline = deadline
        self._headers = CIMultiDict(headers or {})
        self._follow_redirects = follow_redirects
        self._max_redirects = max_redirects
        self._clock: Clock = clock or SystemClock()
        self._on_attempt = on_attempt
        self._logger = logger or logging.getLogger("asgi_kit.httpclient")
        self._propagate = propagate_context
        self._spans = ClientSpans(tracer_provider)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        # Default headers may hold credentials: only their names are shown.
        return (
            f"HTTPClient(base_url={str(self._base_url) if self._base_url else None!r}, "
            f"timeouts={self.timeouts!r}, retry={self.retry!r}, deadline={self.deadline!r}, "
            f"headers={sorted(self._headers.keys())!r})"
        )

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("HTTPClient is already open")
        # Decided once, here: a call never asks OpenTelemetry whether a provider has appeared.
        self._spans.resolve()
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections,
            limit_per_host=self.limits.max_connections_per_host,
            keepalive_timeout=self.limits.keepalive_expiry,
        )
        # DummyCookieJar: a shared service client must not carry one caller's cookies to the next.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session and every pooled connection."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def connections_in_use(self) -> int:
        """Connections currently checked out of the pool (``0`` when idle: no leaks)."""
        if self._session is None:
            return 0
        connector = self._session.connector
        return len(getattr(connector, "_acquired", ()))

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = _UNSET,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | Timeouts | None = None,
        deadline: float | None = _UNSET,
        retry: RetryPolicy | bool | None = None,
    ) -> Response:
        """Send a request, retrying as the policy allows, and return the read response.

        Args:
            method: the HTTP method.
            url: absolute, or relative to ``base_url``.
            params: query parameters.
            json: a JSON body (mutually exclusive with ``data``).
            data: a raw body (bytes, str, or a form mapping).
            headers: headers for this call (override the client's).
            idempotency_key: sent as ``Idempotency-Key`` on every attempt; makes a POST or
                PATCH retryable (so does a non-empty ``Idempotency-Key`` in ``headers``).
            timeout: per-attempt timeout for this call (seconds or :class:`Timeouts`).
            deadline: overall deadline for this call (``None``: none).
            retry: ``False`` disables retries, a :class:`RetryPolicy` replaces the client's.

        Raises:
            TransportError: no response (after retries, when retryable).
            RetryAfterTooLong: the server asked for a wait longer than ``max_retry_after``.
            TooManyRedirects: the redirect chain was too long.
        """
        call = self._prepare(
            method, url, params, json, data, headers, idempotency_key, timeout, deadline, retry
        )
        return await self._run(call, stream=False)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = _UNSET,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | Timeouts | None = None,
        deadline: float | None = _UNSET,
        retry: RetryPolicy | bool | None = None,
    ) -> AsyncIterator[StreamResponse]:
        """Send a request and yield a :class:`StreamResponse` to read the body as it arrives.

        Retries happen only until the response headers arrive (same rules as
        :meth:`request`); the body is never retried. The per-attempt timeout and the deadline
        cover the time to headers; ``read_timeout`` bounds each wait between chunks.
        """
        call = self._prepare(
            method, url, params, json, data, headers, idempotency_key, timeout, deadline, retry
        )
        response = await self._run(call, stream=True)
        try:
            yield response
        finally:
            response._finish()

    async def get(self, url: str, **kwargs: Any) -> Response:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        """``request("POST", url, ...)``."""
        return await self.request("POST", url, **kwargs)

    def _prepare(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        timeout: float | Timeouts | None,
        deadline: float | None,
        retry: RetryPolicy | bool | None,
    ) -> _Call:
        if self._session is None:
            raise RuntimeError("HTTPClient is not open: use `async with HTTPClient(...) as client:`")
        if json is not _UNSET and data is not None:
            raise TypeError("pass either json= or data=, not both")
        method = method.upper()
        target = URL(url)
        if not target.is_absolute():
            if self._base_url is None:
                raise ValueError(f"relative URL {url!r} needs a base_url")
            target = URL(str(self._base_url).rstrip("/") + "/" + url.lstrip("/"))
        if params:
            target = target.update_query(params)
        merged = CIMultiDict(self._headers)
        if headers:
            for name, value in headers.items():
                merged[name] = value
        if idempotency_key is not None:
            merged["Idempotency-Key"] = idempotency_key
        tracer = self._spans.tracer
        # With spans on, every request sent names its own span as the parent (W3C: the parent-id
        # is the caller's current operation, the client request), unless the caller set one.
        inject_trace = tracer is not None and self._propagate and "traceparent" not in merged
        if self._propagate:
            self._add_context_headers(merged, server_span=not inject_trace)
        if retry is False:
            policy = replace(self.retry, max_retries=0)
        elif isinstance(retry, RetryPolicy):
            policy = retry
        else:
            policy = self.retry
        if isinstance(timeout, Timeouts):
            timeouts = timeout
        elif timeout is not None:
            timeouts = replace(self.timeouts, attempt=timeout)
        else:
            timeouts = self.timeouts
        budget = self.deadline if deadline is _UNSET else deadline
        return _Call(
            method=method,
            url=target,
            headers=merged,
            json=None if json is _UNSET else json,
            data=data,
            timeouts=timeouts,
            policy=policy,
            deadline_at=None if budget is None else self._clock.monotonic() + budget,
            # A key given as a header (per call or on the client) is as good as the argument.
            method_retryable=bool(merged.get("Idempotency-Key")) or method in policy.retry_methods,
            safe_url=_safe_url(target),
            spans=None
            if tracer is None
            # Keyed by the URL as given (the base URL is fixed per client); params vary per call.
            else CallSpans(
                self._spans, tracer, self._spans.target(None if params else url, target), inject_trace
            ),
        )

    @staticmethod
    def _add_context_headers(headers: CIMultiDict[str], *, server_span: bool) -> None:
        """``X-Request-ID``, and the current server span's ``traceparent`` when ``server_span``."""
        request_id = get_request_id()
        if request_id and "x-request-id" not in headers:
            headers["X-Request-ID"] = request_id
        if not server_span:
            return
        trace = get_trace_ids()
        if trace is not None and "traceparent" not in headers:
            headers["traceparent"] = trace.traceparent
            if trace.tracestate:
                headers["tracestate"] = trace.tracestate

    @overload
    async def _run(self, call: _Call, *, stream: Literal[False]) -> Response: ...
    @overload
    async def _run(self, call: _Call, *, stream: Literal[True]) -> StreamResponse: ...

    async def _run(self, call: _Call, *, stream: bool) -> Response | StreamResponse:
        schedule = call.policy.backoff_schedule()
        attempt = 0
        while True:
            attempt += 1
            raw, content, error, elapsed = await self._attempt(call, attempt, stream=stream)
            if error is not None:
                delay = self._delay_after_error(call, attempt, error, schedule, elapsed)
            elif raw is None:  # _attempt returns a response or an error; never neither (no assert: -O)
                raise RuntimeError("an HTTP attempt ended with neither a response nor an error")
            elif content is None:  # a stream whose status is final: hand it over open
                self._report(call, attempt, raw.status, None, elapsed, False, 0.0)
                # Its span, if any, goes with it and ends when the stream does.
                span = None if call.spans is None else call.spans.hand_over()
                return StreamResponse(
                    raw=raw,
                    content=None,
                    status=raw.status,
                    headers=raw.headers,
                    url=_safe_url(raw.url),
                    method=call.method,
                    attempts=attempt,
                    span=span,
                    spans=self._spans if span is not None else None,
                )
            else:
                response = Response(
                    status=raw.status,
                    headers=raw.headers,
                    content=content,
                    url=_safe_url(raw.url),
                    method=call.method,
                    attempts=attempt,
                )
                wait = self._delay_after_response(call, attempt, response, schedule, elapsed)
                if wait is None:
                    if not stream:
                        return response
                    return StreamResponse(
                        raw=None,
                        content=content,
                        status=response.status,
                        headers=response.headers,
                        url=response.url,
                        method=call.method,
                        attempts=attempt,
                    )
                delay = wait
            await self._clock.sleep(delay)

    async def _attempt(
        self, call: _Call, attempt: int, *, stream: bool
    ) -> tuple[aiohttp.ClientResponse | None, bytes | None, TransportError | None, float]:
        """One attempt: ``(response, body, error, seconds)``; the response is released unless streamed."""
        budget, cut_by_deadline = call.timeouts.attempt, False
        if call.deadline_at is not None:
            remaining = call.deadline_at - self._clock.monotonic()
            if remaining <= 0:
                raise self._error(DeadlineExceeded, call, attempt - 1, "deadline exceeded")
            if remaining < budget:
                budget, cut_by_deadline = remaining, True
        started = time.perf_counter()
        raw: aiohttp.ClientResponse | None = None
        error: TransportError | None = None
        content: bytes | None = None
        handed_over = False
        failure: str | None = None  # error.type of an exception that leaves this method
        try:
            async with asyncio.timeout(budget):
                raw = await self._send(call, stream=stream)
                if not stream or self._worth_retrying(call, raw.status, raw.headers):
                    content = await raw.read()
                    raw.release()
                else:
                    handed_over = True
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):  # no connection: the request never left
                error = self._error(ConnectError, call, attempt, f"connect timeout: {exc}")
            else:
                cls = DeadlineExceeded if cut_by_deadline else AttemptTimeout
                error = self._error(cls, call, attempt, f"no response within {budget:.3g}s")
            error.__cause__ = exc
        except aiohttp.ClientConnectorError as exc:  # refused, DNS: the request never left
            error = self._error(ConnectError, call, attempt, str(exc))
            error.__cause__ = exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            error = self._error(NetworkError, call, attempt, f"{type(exc).__name__}: {exc}")
            error.__cause__ = exc
        except aiohttp.ClientError as exc:  # invalid URL and the like: a bug, never retried
            failure = error_type_of(HTTPClientError)
            raise self._error(HTTPClientError, call, attempt, f"{type(exc).__name__}: {exc}") from exc
        except BaseException as exc:  # cancelled, or a bug: the span still ends, then it goes on
            failure = error_type_of(type(exc))
            raise
        finally:
            # Cancellation, errors and retries alike: never leave a connection checked out.
            if raw is not None and content is None and not handed_over:
                raw.close()
            if call.spans is not None and not handed_over:
                if error is not None:
                    failure = error_type_of(type(error))
                call.spans.end(None if raw is None else raw.status, failure)
        return raw, content, error, time.perf_counter() - started

    def _delay_after_error(
        self, call: _Call, attempt: int, error: TransportError, schedule: Iterator[float], elapsed: float
    ) -> float:
        """The wait before retrying after a transport error; raises when the call gives up."""
        # A connection that was never made carried nothing: retrying it is safe for any method.
        retryable = isinstance(error, ConnectError) or call.method_retryable
        if not retryable or attempt > call.policy.max_retries:
            self._report(call, attempt, None, error, elapsed, False, 0.0)
            raise error
        delay = next(schedule)
        if call.deadline_at is not None and self._clock.monotonic() + delay >= call.deadline_at:
            self._report(call, attempt, None, error, elapsed, False, 0.0)
            if isinstance(error, DeadlineExceeded):
                raise error
            raise self._error(DeadlineExceeded, call, attempt, "deadline exceeded") from error
        self._report(call, attempt, None, error, elapsed, True, delay)
        return delay

    def _delay_after_response(
        self, call: _Call, attempt: int, response: Response, schedule: Iterator[float], elapsed: float
    ) -> float | None:
        """The wait before retrying after a response, or ``None`` to return it; raises past the cap."""
        policy = call.policy
        retry = (
            attempt <= policy.max_retries
            and self._worth_retrying(call, response.status, response.headers)
            and not (policy.give_up is not None and policy.give_up(response))
        )
        delay = 0.0
        if retry:
            hinted = retry_after_seconds(response.headers, now=self._clock.time())
            if hinted is not None and hinted > policy.max_retry_after:
                self._report(call, attempt, response.status, None, elapsed, False, 0.0)
                raise RetryAfterTooLong(
                    f"{call.method} {call.safe_url}: server asked to wait {hinted:g}s, "
                    f"more than max_retry_after={policy.max_retry_after:g}s",
                    retry_after=hinted,
                    response=response,
                    method=call.method,
                    url=call.safe_url,
                    attempts=attempt,
                )
            delay = next(schedule) if hinted is None else hinted
            # Waiting would outlive the deadline: the caller gets this answer now.
            retry = call.deadline_at is None or self._clock.monotonic() + delay < call.deadline_at
        self._report(call, attempt, response.status, None, elapsed, retry, delay if retry else 0.0)
        return delay if retry else None

    def _worth_retrying(self, call: _Call, status: int, headers: Mapping[str, str]) -> bool:
        if not call.method_retryable:
            return False
        if status < 400:  # a success is never retried, whatever the headers say
            return status in call.policy.retry_statuses
        hint = should_retry_hint(headers)
        if hint is not None:
            return hint
        return status in call.policy.retry_statuses

    async def _send(self, call: _Call, *, stream: bool) -> aiohttp.ClientResponse:
        """One attempt: the request plus any redirects it leads to."""
        session = self._session
        if session is None:  # request() checked it already; no assert (python -O)
            raise RuntimeError("HTTPClient is not open: use `async with HTTPClient(...) as client:`")
        timeout = aiohttp.ClientTimeout(
            total=None, connect=call.timeouts.connect, sock_read=call.timeouts.stream_read if stream else None
        )
        method, url, headers, json, data = call.method, call.url, call.headers, call.json, call.data
        spans = call.spans
        for hop in range(self._max_redirects + 1):
            if spans is not None:  # a span per request sent: each redirect hop is one too
                spans.start(method, url, call.url, headers)
            raw = await session.request(
                method, url, headers=headers, json=json, data=data, allow_redirects=False, timeout=timeout
            )
            location = raw.headers.get("Location")
            if not self._follow_redirects or raw.status not in _REDIRECTS or not location:
                return raw
            raw.release()
            if spans is not None:
                last = hop == self._max_redirects  # conventions: a 3xx past the redirect limit is an error
                spans.end(raw.status, error_type_of(TooManyRedirects) if last else None)
            target = raw.url.join(URL(location))
            if target.origin() != url.origin():
                headers = CIMultiDict(
                    (k, v) for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS
                )
            if (raw.status == 303 and method != "HEAD") or (raw.status in (301, 302) and method == "POST"):
                method, json, data = "GET", None, None
            url = target
        raise TooManyRedirects(
            f"{call.method} {call.safe_url}: more than {self._max_redirects} redirects",
            method=call.method,
            url=call.safe_url,
        )

    @staticmethod
    def _error(cls: type[_E], call: _Call, attempt: int, message: str) -> _E:
        return cls(
            f"{call.method} {call.safe_url}: {message}",
            method=call.method,
            url=call.safe_url,
            attempts=attempt,
        )

    def _report(
        self,
        call: _Call,
        attempt: int,
        status: int | None,
        error: Exception | None,
        elapsed: float,
        will_retry: bool,
        delay: float,
    ) -> None:
        record = AttemptRecord(
            method=call.method,
            url=call.safe_url,
            attempt=attempt,
            status=status,
            error=None if error is None else type(error).__name__,
            elapsed=elapsed,
            will_retry=will_retry,
            delay=delay,
        )
        failed = error is not None or (status is not None and (status >= 500 or status == 429))
        level = logging.INFO if will_retry else logging.WARNING if failed else logging.DEBUG
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level,
                "%s %s attempt %d: %s%s",
                call.method,
                call.safe_url,
                attempt,
                status if error is None else type(error).__name__,
                f", retrying in {delay:.3f}s" if will_retry else "",
                extra={
                    "http_method": call.method,
                    "http_url": call.safe_url,
                    "attempt": attempt,
                    "http_status": status,
                    "error": record.error,
                    "elapsed": round(elapsed, 6),
                    "will_retry": will_retry,
                    "retry_delay": delay,
                },
            )
        if self._on_attempt is not None:
            try:
                self._on_attempt(record)
            except Exception:  # a broken metrics hook never breaks a call
                self._logger.warning("on_attempt hook failed", exc_info=True)


__all__ = ["SENSITIVE_HEADERS", "HTTPClient"]
