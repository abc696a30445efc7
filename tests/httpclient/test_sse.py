"""The SSE parser: spec cases, and properties that hold however the bytes are chunked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.httpclient.sse import ServerSentEvent, SSEDecodeError, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)] + decoder.close()


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data: a\n\n", [ServerSentEvent("a")]),
        (b"data:a\r\n\r\n", [ServerSentEvent("a")]),
        (b"data:  two spaces\r\r", [ServerSentEvent(" two spaces")]),
        (b"data: 1\ndata: 2\n\n", [ServerSentEvent("1\n2")]),
        (b"event: error\ndata: x\n\n", [ServerSentEvent("x", event="error")]),
        (b"id: 7\nretry: 1500\ndata: x\n\n", [ServerSentEvent("x", id="7", retry=1500)]),
        (b"retry: soon\nid: a\0b\ndata: x\n\n", [ServerSentEvent("x")]),
        (b": comment\n\ndata\n\n", [ServerSentEvent("")]),
        (b"event: only\n\ndata: next\n\n", [ServerSentEvent("next")]),
        (b"\xef\xbb\xbfdata: bom\n\n", [ServerSentEvent("bom")]),
        (b"unknown: x\ndata: y\n\n", [ServerSentEvent("y")]),
        (b"data: no blank line at the end\n", []),
    ],
)
def test_spec_cases(stream: bytes, expected: list[ServerSentEvent]) -> None:
    """Line endings, multi-line data, event types, ids, retry, comments, BOM, undispatched tails."""
    assert decode(stream) == expected


def test_pending_reports_a_truncated_event() -> None:
    """pending is true while an event is half-received."""
    decoder = SSEDecoder()
    decoder.feed(b"data: half")
    assert decoder.pending
    decoder.feed(b"\n\n")
    assert not decoder.pending


def test_close_ends_a_trailing_cr_line() -> None:
    """A stream ending in a lone \\r still dispatches its last event; close() is empty otherwise."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == []
    assert decoder.close() == [ServerSentEvent("x")]
    assert decoder.close() == []


def test_invalid_utf8_raises() -> None:
    """Bytes that are not UTF-8 raise SSEDecodeError (a ValueError)."""
    with pytest.raises(SSEDecodeError):
        decode(b"data: \xc3\x28\n\n")


_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\0"), max_size=20)
_events = st.lists(
    st.builds(
        ServerSentEvent,
        data=st.lists(_text, min_size=1, max_size=3).map("\n".join),
        event=st.sampled_from(["message", "error", "chunk"]),
    ),
    max_size=5,
)


def _encode(events: list[ServerSentEvent], newline: bytes) -> bytes:
    out = b""
    for event in events:
        if event.event != "message":
            out += b"event: " + event.event.encode() + newline
        for line in event.data.split("\n"):
            out += b"data: " + line.encode() + newline
        out += newline
    return out


@given(events=_events, newline=st.sampled_from([b"\n", b"\r", b"\r\n"]), data=st.data())
def test_any_chunking_gives_the_same_events(
    events: list[ServerSentEvent], newline: bytes, data: st.DataObject
) -> None:
    """Splitting the stream anywhere (mid-line, mid-CRLF, mid-UTF-8) never changes the events."""
    stream = b"\xef\xbb\xbf" + _encode(events, newline)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert decode(*chunks) == events


@given(st.binary(max_size=200), st.integers(1, 10))
def test_arbitrary_bytes_never_crash(stream: bytes, size: int) -> None:
    """Any bytes give events or SSEDecodeError, never another exception."""
    decoder = SSEDecoder()
    try:
        for start in range(0, len(stream), size):
            for event in decoder.feed(stream[start : start + size]):
                assert isinstance(event.data, str)
    except SSEDecodeError:
        pass
