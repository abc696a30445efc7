"""An incremental Server-Sent Events parser (the WHATWG ``text/event-stream`` format).

Feed it bytes as they arrive, in chunks cut anywhere (inside a line, between ``\\r`` and
``\\n``, inside a UTF-8 sequence); it returns the events completed so far. Used by the OpenAI
client for ``stream=true`` responses; usable for any SSE upstream. Unlike a browser it decodes
strictly: bytes that are not UTF-8 raise :class:`SSEDecodeError` instead of turning into
replacement characters, because a corrupted token stream should fail loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from asgi_kit._asgi.exceptions import AsgiKitError

_BOM: Final = b"\xef\xbb\xbf"


class SSEDecodeError(AsgiKitError, ValueError):
    """The stream is not valid UTF-8."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        data: the ``data:`` lines joined with ``\\n``.
        event: the ``event:`` type (``"message"`` when none was given).
        id: the last ``id:`` seen, or ``None``.
        retry: the ``retry:`` reconnection time in milliseconds, or ``None``.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turn a byte stream into :class:`ServerSentEvent` objects, chunk by chunk."""

    __slots__ = ("_buffer", "_data", "_event", "_last_id", "_retry", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Add bytes; return the events they complete (possibly none)."""
        buffer = self._buffer + chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        events: list[ServerSentEvent] = []
        start = 0
        size = len(buffer)
        while start < size:
            cr = buffer.find(b"\r", start)
            lf = buffer.find(b"\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == size:
                    break  # a lone trailing \r may be the first half of \r\n: wait for more
                end, next_start = cr, cr + 2 if buffer[cr + 1 : cr + 2] == b"\n" else cr + 1
            else:
                end, next_start = lf, lf + 1
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = next_start
        self._buffer = buffer[start:]
        return events

    def close(self) -> list[ServerSentEvent]:
        """Call at the end of the stream: a trailing ``\r`` ends its line (an unfinished event is dropped)."""
        return self.feed(b"\n") if self._buffer.endswith(b"\r") else []

    @property
    def pending(self) -> bool:
        """Whether bytes or fields of an unfinished event are waiting (a truncated stream)."""
        return bool(self._buffer.strip(_BOM) or self._data or self._event)

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SSEDecodeError(f"event stream is not valid UTF-8: {exc.reason}") from exc
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: servers send these as keep-alives
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None  # the spec drops an event with no data lines
        return ServerSentEvent(
            data="\n".join(data), event=event or "message", id=self._last_id, retry=self._retry
        )


__all__ = ["SSEDecodeError", "SSEDecoder", "ServerSentEvent"]
