"""W3C Trace Context (``traceparent`` / ``tracestate``), parsed and formatted exactly.

Our own parser rather than OpenTelemetry's global propagator: it is faster on the hot path
(no regex for ``traceparent``, no dict of carriers) and it follows the spec to the letter:

- ``traceparent`` is ``version-traceid-parentid-flags`` in lower-case hex only. Version
  ``ff`` is invalid. Version ``00`` is exactly 55 characters. A higher version may be longer,
  but only when character 56 is a ``-``; we read its first four fields and keep only the
  ``sampled`` flag, whose meaning every version shares. All-zero trace or parent ids are
  invalid. Surrounding spaces and tabs (HTTP's OWS) are ignored; anything inside is not.
  More than one ``traceparent`` header is invalid.
- ``tracestate`` may come in several headers; they are joined with commas as HTTP says.
  Members are ``key=value`` separated by ``OWS "," OWS``; empty members are allowed and
  skipped. Keys follow the current grammar, ``(lcalpha / DIGIT) 0*255(keychar)`` where a
  keychar is ``[a-z0-9_\\-*/@]``: ``@`` may appear anywhere after the first character (the
  Level 1 ``tenant@system`` split and its 241/14 limits are gone). Values are 1-256 printable
  ASCII characters without ``,`` or ``=``, not ending in a space. A later member whose key
  repeats an earlier one is dropped on its own; the first stays. At most 32 members. Anything
  else that is invalid drops the whole ``tracestate``, and an invalid ``traceparent`` drops
  ``tracestate`` too (the request then starts a new trace).

Hostile input costs linear time: ``traceparent`` is read at fixed offsets after one strip,
and the joined ``tracestate`` is refused before splitting once it passes
:data:`MAX_TRACESTATE_LENGTH`, so no regex ever sees an unbounded string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from asgi_kit._asgi.headers import HeaderList

TRACEPARENT_HEADER: Final = b"traceparent"
TRACESTATE_HEADER: Final = b"tracestate"

#: The length of a version-00 ``traceparent`` (and the minimum for any version).
TRACEPARENT_LENGTH: Final = 55
#: The most ``tracestate`` list members the spec allows.
MAX_TRACESTATE_MEMBERS: Final = 32
#: The longest joined ``tracestate`` we read: 32 members of the longest key (256) and value
#: (256) with their separators is 16,447 characters; the rest is room for OWS.
MAX_TRACESTATE_LENGTH: Final = 32 * 1024

SAMPLED_FLAG: Final = 0x01
_OWS: Final = b" \t"
_LOWER_HEX_AND_DASH: Final = b"0123456789abcdef-"
_INVALID_VERSION: Final = b"ff"

# Bounded quantifiers only: a member is at most a few hundred characters by the time these run.
_KEY_RE: Final = re.compile(r"[a-z0-9][a-z0-9_\-*/@]{0,255}")
_VALUE_RE: Final = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


class TraceParent(NamedTuple):
    """A parsed ``traceparent``: ids as integers (as OpenTelemetry's ``SpanContext`` wants)."""

    trace_id: int
    span_id: int
    trace_flags: int
    version: int = 0

    @property
    def sampled(self) -> bool:
        return bool(self.trace_flags & SAMPLED_FLAG)

    def to_header(self) -> str:
        """The version-00 header for these ids (what we propagate whatever version came in)."""
        return format_traceparent(self.trace_id, self.span_id, self.trace_flags)


TraceState = tuple[tuple[str, str], ...]


def parse_traceparent(value: bytes | str) -> TraceParent | None:
    """Parse one ``traceparent`` value; ``None`` when it is invalid in any way."""
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            return None
    value = value.strip(_OWS)
    length = len(value)
    if length < TRACEPARENT_LENGTH:
        return None
    head = value[:TRACEPARENT_LENGTH]
    # One C-speed pass: nothing but lower-case hex and exactly the three dashes where they belong.
    if head.translate(None, _LOWER_HEX_AND_DASH) or head.count(b"-") != 3:
        return None
    if head[2] != 0x2D or head[35] != 0x2D or head[52] != 0x2D:
        return None
    version = head[0:2]
    if version == b"00":
        if length != TRACEPARENT_LENGTH:
            return None
    elif version == _INVALID_VERSION or (length > TRACEPARENT_LENGTH and value[55] != 0x2D):
        return None  # ff is never valid; a longer future version continues with "-"
    trace_hex = head[3:35]
    span_hex = head[36:52]
    flags_hex = head[53:55]
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    flags = int(flags_hex, 16)
    version_number = int(version, 16)
    if version_number != 0:
        flags &= SAMPLED_FLAG  # the other bits may mean something else in that version
    return TraceParent(trace_id, span_id, flags, version_number)


def format_traceparent(trace_id: int, span_id: int, trace_flags: int) -> str:
    """A version-00 ``traceparent``; raises ``ValueError`` for ids a header cannot carry."""
    if not 0 < trace_id < 1 << 128:
        raise ValueError("trace_id must be a non-zero 128-bit integer")
    if not 0 < span_id < 1 << 64:
        raise ValueError("span_id must be a non-zero 64-bit integer")
    if not 0 <= trace_flags <= 0xFF:
        raise ValueError("trace_flags must fit in one byte")
    return f"00-{trace_id:032x}-{span_id:016x}-{trace_flags:02x}"


def parse_tracestate(values: Sequence[bytes | str]) -> TraceState | None:
    """Parse every ``tracestate`` header value of a request, joined with commas.

    Returns the members in order (``()`` when there are none), or ``None`` when the
    ``tracestate`` is invalid and must be dropped as a whole.
    """
    if not values:
        return ()
    raw_parts: list[bytes] = []
    total = 0
    for item in values:
        part = item if isinstance(item, bytes) else item.encode("latin-1", "replace")
        total += len(part) + 1
        if total > MAX_TRACESTATE_LENGTH + 1:
            return None  # refuse before splitting: linear whatever the client sends
        raw_parts.append(part)
    try:
        joined = b",".join(raw_parts).decode("ascii")
    except UnicodeDecodeError:
        return None
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for member in joined.split(","):
        member = member.strip(" \t")
        if not member:
            continue  # empty members are allowed: they appear when headers are joined
        key, sep, val = member.partition("=")
        if not sep or not _KEY_RE.fullmatch(key) or not _VALUE_RE.fullmatch(val):
            return None
        if key in seen:
            continue  # the first member of a key is the one its vendor wrote last
        if len(members) == MAX_TRACESTATE_MEMBERS:
            return None
        seen.add(key)
        members.append((key, val))
    return tuple(members)


def format_tracestate(members: Iterable[tuple[str, str]]) -> str:
    """The ``tracestate`` header for ``members`` (already valid, as :func:`parse_tracestate` gives)."""
    return ",".join(f"{key}={value}" for key, value in members)


class TraceContext(NamedTuple):
    """The incoming W3C context of a request: a valid parent and its (maybe empty) state."""

    parent: TraceParent
    tracestate: TraceState


def extract(headers: HeaderList) -> TraceContext | None:
    """The W3C context in a raw ASGI header list, or ``None`` to start a new trace.

    Header names are matched as ASGI servers give them (lower-case bytes). Two
    ``traceparent`` headers make the context invalid; an invalid ``tracestate`` is dropped
    while a valid ``traceparent`` is kept.
    """
    traceparent: bytes | None = None
    duplicate = False
    tracestate: list[bytes] = []
    for name, value in headers:
        if name == TRACEPARENT_HEADER:
            duplicate = traceparent is not None
            traceparent = value
        elif name == TRACESTATE_HEADER:
            tracestate.append(value)
    return context_from_values(traceparent, tracestate, duplicate=duplicate)


def context_from_values(
    traceparent: bytes | None, tracestate: Sequence[bytes], *, duplicate: bool = False
) -> TraceContext | None:
    """Build the context from header values already picked out of the request."""
    if traceparent is None or duplicate:
        return None
    parent = parse_traceparent(traceparent)
    if parent is None:
        return None
    return TraceContext(parent, parse_tracestate(tracestate) or ())


__all__ = [
    "MAX_TRACESTATE_LENGTH",
    "MAX_TRACESTATE_MEMBERS",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "TraceContext",
    "TraceParent",
    "TraceState",
    "context_from_values",
    "extract",
    "format_traceparent",
    "format_tracestate",
    "parse_traceparent",
    "parse_tracestate",
]
