"""``MeteredCall``: one upstream call, plain or streamed, settled exactly once on every way out.

A gateway wraps each upstream call::

    async with ledger.meter(request_id=rid, org_id=org, model=model, prompt_estimate=n) as call:
        completion = await client.chat_completion(...)       # plain
        call.usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)

    async with ledger.meter(...) as call:                    # streamed
        async for chunk in call.stream(client.chat_completion_stream(...), receive=receive):
            await send(...)

The stream is read by a task of the meter (a pump), not by the handler: cancelling the
handler (a timeout guard, a server shutting down) or a client that goes away cannot cut the
upstream read in the middle, so the meter can keep reading to the upstream's usage event.

What is recorded (the settlement):

* the upstream's usage when it arrived, as reported: an explicit zero stays zero;
* otherwise, when the upstream answered something (a stream that failed or was cut midway, a
  plain call that reported no usage, a plain call cancelled while in flight), the **prompt
  estimate plus the completion tokens received** (one per content piece of a chunk, as OpenAI
  streams them), marked ``estimated``;
* nothing, when the upstream refused or could not be reached before answering (an error
  status, a failed connection): no record, and the reservation settles to 0.

The disconnect policy: when the handler leaves the block before the stream ended (the client
disconnected: a ``send`` raised ``OSError``, or ``http.disconnect`` arrived on ``receive``;
a cancellation; any exception), the pump goes on reading the upstream, without forwarding,
for at most ``drain_timeout`` seconds and while at most ``max_drains`` such drains run in the
process (both :class:`~asgi_kit.budget.UsageLedger` options). It settles with the usage event
when it arrives; when the bound is hit (time, or no free drain slot), the stream is closed and
the call settles with what was received. Closing the ledger waits for the drains, then cuts
the ones still running.

A reservation, when given, has :meth:`Reservation.settle` called exactly once, with the settled
total, at the same moment the record is handed to the ledger.

A process killed with ``SIGKILL`` settles nothing for the calls it had in flight: they are
not in the ledger (their tokens were never settled), and a reservation they held stays charged
until its lease expires. Calls settled before the kill are in the sink or the spool, except those
of the last ``max_delay`` + ``spool_after`` seconds whose batch the sink had not acknowledged
(see :mod:`asgi_kit.budget.ledger`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, Self, TypeVar, runtime_checkable

from asgi_kit._asgi.exceptions import AsgiKitError
from asgi_kit._asgi.types import Receive

if TYPE_CHECKING:
    from asgi_kit.budget.ledger import UsageLedger

from asgi_kit.budget.record import UsageRecord

logger = logging.getLogger("asgi_kit.budget")

T = TypeVar("T")
_CHUNK: Final = 0
_END: Final = 1
_ERROR: Final = 2


@runtime_checkable
class Reservation(Protocol):
    """Tokens held for a call before it ran; the meter settles it once with the real total."""

    def settle(self, tokens: int) -> None: ...


class ClientDisconnected(AsgiKitError, OSError):
    """The client went away (``http.disconnect`` on ``receive``) while the stream was being sent."""


def chunk_usage(chunk: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of an OpenAI-shaped chunk's ``usage``, or ``None``."""
    usage = getattr(chunk, "usage", None)
    if usage is None:
        return None
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def chunk_tokens(chunk: Any) -> int:
    """Completion tokens in an OpenAI-shaped chunk: one per choice whose delta carries content."""
    count = 0
    for choice in getattr(chunk, "choices", None) or ():
        delta = getattr(choice, "delta", None)
        if getattr(delta, "content", None):
            count += 1
    return count


class MeteredCall(Generic[T]):
    """One upstream call; build it with :meth:`UsageLedger.meter`. See the module docstring."""

    def __init__(
        self,
        ledger: UsageLedger,
        *,
        request_id: str,
        org_id: str | None,
        model: str,
        user_id: str | None = None,
        api_key_id: str | None = None,
        prompt_estimate: int = 0,
        reservation: Reservation | None = None,
    ) -> None:
        if not isinstance(request_id, str) or not request_id:
            raise ValueError("request_id must be a non-empty str")
        if isinstance(prompt_estimate, bool) or not isinstance(prompt_estimate, int) or prompt_estimate < 0:
            raise ValueError("prompt_estimate must be a non-negative int")
        if reservation is not None and not callable(getattr(reservation, "settle", None)):
            raise TypeError("reservation must have a settle(tokens) method")
        self._ledger = ledger
        self.request_id = request_id
        self._org_id = org_id
        self._model = model
        self._user_id = user_id
        self._api_key_id = api_key_id
        self._prompt_estimate = prompt_estimate
        self._reservation = reservation
        self._usage: tuple[int, int] | None = None
        self._received = 0
        self._chunks = 0
        self._pump: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue(maxsize=1)
        self._draining = False
        self._failed = False
        self._cut = False
        self._exited = False
        self._outcome: str | None = None  # how the block was left: "ok", "cancelled", "error"
        self.disconnected = False
        #: the record handed to the ledger, once settled (``None``: nothing recorded)
        self.record: UsageRecord | None = None
        #: the settled total, once settled
        self.total: int | None = None

    def __repr__(self) -> str:
        return f"MeteredCall(request_id={self.request_id!r}, settled={self.settled})"

    @property
    def settled(self) -> bool:
        return self.total is not None

    async def __aenter__(self) -> Self:
        return self

    def usage(self, prompt_tokens: int, completion_tokens: int = 0) -> None:
        """The usage the upstream reported for a plain call (``0`` stays ``0``)."""
        self._usage = (int(prompt_tokens), int(completion_tokens))

    def stream(
        self,
        upstream: AsyncIterator[T],
        *,
        receive: Receive | None = None,
        usage_of: Callable[[T], tuple[int, int] | None] = chunk_usage,
        tokens_of: Callable[[T], int] = chunk_tokens,
    ) -> AsyncIterator[T]:
        """Iterate ``upstream`` through the meter, which sees every chunk's usage and content.

        With ``receive``, an ``http.disconnect`` makes the next step raise
        :class:`ClientDisconnected` (an ``OSError``), as a server whose ``send`` fails would.
        An upstream error is raised to the caller unchanged.
        """
        if self._pump is not None:
            raise RuntimeError("a metered call has one stream")
        self._pump = asyncio.create_task(self._run_pump(upstream, usage_of, tokens_of))
        if receive is not None:
            self._watcher = asyncio.create_task(self._watch(receive))
        return _MeteredStream(self)

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected = True

    async def _run_pump(
        self,
        upstream: AsyncIterator[T],
        usage_of: Callable[[T], tuple[int, int] | None],
        tokens_of: Callable[[T], int],
    ) -> None:
        try:
            while True:
                try:
                    chunk = await anext(upstream)
                except StopAsyncIteration:
                    break
                self._chunks += 1
                usage = usage_of(chunk)
                if usage is not None:
                    self._usage = usage
                self._received += tokens_of(chunk)
                if not self._draining:
                    await self._queue.put((_CHUNK, chunk))
            if not self._draining:
                await self._queue.put((_END, None))
        except asyncio.CancelledError:
            self._cut = True
            raise
        except Exception as exc:  # the upstream failed: the handler sees the same exception
            self._failed = True
            if not self._draining:
                await self._queue.put((_ERROR, exc))
        finally:
            close = getattr(upstream, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # a broken stream may fail to close; the settlement matters more
                    logger.debug("upstream stream did not close cleanly", exc_info=True)
            if self._exited:
                self._settle()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exited = True
        if exc_type is None:
            self._outcome = "ok"
        elif issubclass(exc_type, asyncio.CancelledError):
            self._outcome = "cancelled"
        else:
            self._outcome = "error"
        if self._watcher is not None:
            self._watcher.cancel()
        pump = self._pump
        if pump is None or pump.done():
            self._settle()
            return
        # The upstream is still sending: stop forwarding, free a pump blocked on the queue.
        self._draining = True
        while not self._queue.empty():
            self._queue.get_nowait()
        ledger = self._ledger
        if ledger._can_drain():
            ledger._start_drain(asyncio.create_task(self._drain(pump)))
        else:
            pump.cancel()  # its finally settles with what was received
            ledger._start_drain(pump, counted=False)

    async def _drain(self, pump: asyncio.Task[None]) -> None:
        try:
            done, _ = await asyncio.wait({pump}, timeout=self._ledger.drain_timeout)
            if not done:
                self._ledger._count_drain_timeout()
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
        except asyncio.CancelledError:
            pump.cancel()
            raise

    def _settle(self) -> None:
        if self.total is not None:
            return
        estimated = False
        if self._usage is not None:
            prompt, completion = self._usage
        elif self._refused():
            prompt, completion = 0, 0
            self.total = 0
            self._settle_reservation(0)
            return
        else:
            prompt, completion, estimated = self._prompt_estimate, self._received, True
        self.total = prompt + completion
        if self._org_id is not None:
            self.record = UsageRecord(
                request_id=self.request_id,
                org_id=self._org_id,
                model=self._model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                user_id=self._user_id,
                api_key_id=self._api_key_id,
                estimated=estimated,
            )
            self._ledger.record(self.record)
        self._settle_reservation(self.total)

    def _refused(self) -> bool:
        """Whether the upstream answered nothing: no usage is owed for the call."""
        if self._pump is not None:
            return self._failed and self._chunks == 0
        return self._outcome == "error"

    def _settle_reservation(self, tokens: int) -> None:
        if self._reservation is None:
            return
        try:
            self._reservation.settle(tokens)
        except Exception:  # a broken reservation must not lose the record or break the handler
            logger.exception("reservation of request %s failed to settle", self.request_id)


class _MeteredStream(Generic[T]):
    __slots__ = ("_call", "_done")

    def __init__(self, call: MeteredCall[T]) -> None:
        self._call = call
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        call = self._call
        if self._done:
            raise StopAsyncIteration
        if call.disconnected:
            raise ClientDisconnected("the client disconnected")
        kind, value = await call._queue.get()
        if kind == _CHUNK:
            return value  # type: ignore[no-any-return]
        self._done = True
        if kind == _END:
            raise StopAsyncIteration
        raise value


__all__ = ["ClientDisconnected", "MeteredCall", "Reservation", "chunk_tokens", "chunk_usage"]
