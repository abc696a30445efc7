"""W3C Trace Context: ``traceparent`` and ``tracestate`` parsing, exact to the spec."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit.tracing.propagation import (
    MAX_TRACESTATE_LENGTH,
    TraceContext,
    TraceParent,
    extract,
    format_traceparent,
    format_tracestate,
    parse_traceparent,
    parse_tracestate,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
VALID = f"00-{TRACE}-{SPAN}-01"

# (header value, expected (trace_id hex, span_id hex, flags, version) or None)
TRACEPARENT_CASES = [
    pytest.param(VALID, (TRACE, SPAN, 1, 0), id="valid-sampled"),
    pytest.param(f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN, 0, 0), id="valid-not-sampled"),
    pytest.param(f"00-{TRACE}-{SPAN}-09", (TRACE, SPAN, 9, 0), id="v00-unknown-flags-kept"),
    pytest.param(f"00-{TRACE}-{SPAN}-ff", (TRACE, SPAN, 0xFF, 0), id="v00-all-flags"),
    pytest.param(f"  {VALID}\t", (TRACE, SPAN, 1, 0), id="surrounding-ows"),
    pytest.param(f"\t\t{VALID}", (TRACE, SPAN, 1, 0), id="leading-tabs"),
    pytest.param(f"00-{TRACE}-{SPAN}-01 ", (TRACE, SPAN, 1, 0), id="trailing-space"),
    pytest.param(f"00-{TRACE}-{SPAN}-01-", None, id="v00-trailing-dash"),
    pytest.param(f"00-{TRACE}-{SPAN}-01-extra", None, id="v00-longer"),
    pytest.param(f"00-{TRACE}-{SPAN}-1", None, id="short-flags"),
    pytest.param(f"00-{TRACE}-{SPAN}-011", None, id="long-flags"),
    pytest.param(f"00-{TRACE}-{SPAN}-0g", None, id="non-hex-flags"),
    pytest.param(f"00-{TRACE.upper()}-{SPAN}-01", None, id="uppercase-trace-id"),
    pytest.param(f"00-{TRACE}-{SPAN.upper()}-01", None, id="uppercase-span-id"),
    pytest.param(f"00-{TRACE}-{SPAN}-0A", None, id="uppercase-flags"),
    pytest.param(f"0A-{TRACE}-{SPAN}-01", None, id="uppercase-version"),
    pytest.param(f"00-{'0' * 32}-{SPAN}-01", None, id="zero-trace-id"),
    pytest.param(f"00-{TRACE}-{'0' * 16}-01", None, id="zero-span-id"),
    pytest.param(f"00-{TRACE[:-1]}-{SPAN}-01", None, id="short-trace-id"),
    pytest.param(f"00-{TRACE}0-{SPAN}-01", None, id="long-trace-id"),
    pytest.param(f"00-{TRACE}-{SPAN[:-1]}-01", None, id="short-span-id"),
    pytest.param(f"00-{TRACE}-{SPAN}0-01", None, id="long-span-id"),
    pytest.param(f"00_{TRACE}_{SPAN}_01", None, id="wrong-delimiter"),
    pytest.param(f"00-{TRACE[:10]}-{TRACE[11:]}-{SPAN}-01", None, id="dash-inside-trace-id"),
    pytest.param(f"00-{TRACE}-{SPAN}- 1", None, id="space-inside"),
    pytest.param(f"00 -{TRACE}-{SPAN}-01", None, id="space-after-version"),
    pytest.param(f"00-+{TRACE[1:]}-{SPAN}-01", None, id="plus-sign"),
    pytest.param(f"00-{TRACE[:31]}_-{SPAN}-01", None, id="underscore"),
    pytest.param(f"0-{TRACE}-{SPAN}-01", None, id="short-version"),
    pytest.param(f"000-{TRACE}-{SPAN}-01", None, id="long-version"),
    pytest.param(f"ff-{TRACE}-{SPAN}-01", None, id="version-ff"),
    pytest.param(f"ff-{TRACE}-{SPAN}-01-what", None, id="version-ff-longer"),
    pytest.param(f"zz-{TRACE}-{SPAN}-01", None, id="non-hex-version"),
    pytest.param(f"01-{TRACE}-{SPAN}-01", (TRACE, SPAN, 1, 1), id="future-version"),
    pytest.param(f"cc-{TRACE}-{SPAN}-01-what-the-future-holds", (TRACE, SPAN, 1, 0xCC), id="future-longer"),
    pytest.param(f"cc-{TRACE}-{SPAN}-03", (TRACE, SPAN, 1, 0xCC), id="future-only-sampled-bit"),
    pytest.param(f"cc-{TRACE}-{SPAN}-02-x", (TRACE, SPAN, 0, 0xCC), id="future-unknown-bit-dropped"),
    pytest.param(f"cc-{TRACE}-{SPAN}-01.what", None, id="future-longer-without-dash"),
    pytest.param(f"cc-{TRACE}-{SPAN}-0", None, id="future-too-short"),
    pytest.param(f"cc-{'0' * 32}-{SPAN}-01-x", None, id="future-zero-trace-id"),
    pytest.param(f"00-{TRACE}-{SPAN}-01,00-{TRACE}-{SPAN}-01", None, id="joined-duplicates"),
    pytest.param("", None, id="empty"),
    pytest.param("   ", None, id="whitespace-only"),
    pytest.param(f"00-{TRACE}-{SPAN}-0\u0661", None, id="non-ascii-digit"),
]


def _expected(expected: tuple[str, str, int, int] | None) -> TraceParent | None:
    if expected is None:
        return None
    trace_hex, span_hex, flags, version = expected
    return TraceParent(int(trace_hex, 16), int(span_hex, 16), flags, version)


@pytest.mark.parametrize(("header", "expected"), TRACEPARENT_CASES)
def test_traceparent_table(header: str, expected: tuple[str, str, int, int] | None) -> None:
    """Each traceparent case parses exactly as the W3C spec says (str input)."""
    assert parse_traceparent(header) == _expected(expected)


@pytest.mark.parametrize(("header", "expected"), TRACEPARENT_CASES)
def test_traceparent_table_bytes(header: str, expected: tuple[str, str, int, int] | None) -> None:
    """Raw ASGI header bytes parse the same as text (non-ASCII bytes are invalid)."""
    assert parse_traceparent(header.encode("utf-8")) == _expected(expected)


def test_traceparent_sampled_and_round_trip() -> None:
    """A parsed traceparent reports its sampled flag and formats back to the same header."""
    parsed = parse_traceparent(VALID)
    assert parsed is not None and parsed.sampled
    assert parsed.to_header() == VALID
    assert not TraceParent(1, 1, 0).sampled


def test_future_version_is_propagated_as_version_00() -> None:
    """A higher-version traceparent is re-emitted as version 00 with the sampled flag."""
    parsed = parse_traceparent(f"cc-{TRACE}-{SPAN}-01-more")
    assert parsed is not None
    assert parsed.to_header() == f"00-{TRACE}-{SPAN}-01"


@pytest.mark.parametrize(
    ("trace_id", "span_id", "flags", "message"),
    [
        (0, 1, 0, "trace_id"),
        (1 << 128, 1, 0, "trace_id"),
        (1, 0, 0, "span_id"),
        (1, 1 << 64, 0, "span_id"),
        (1, 1, 256, "trace_flags"),
        (1, 1, -1, "trace_flags"),
    ],
)
def test_format_traceparent_refuses_unrepresentable_ids(
    trace_id: int, span_id: int, flags: int, message: str
) -> None:
    """format_traceparent raises ValueError naming the field a header cannot carry."""
    with pytest.raises(ValueError, match=message):
        format_traceparent(trace_id, span_id, flags)


# -- tracestate ---------------------------------------------------------------------------------

KEY_256 = "a" + "b" * 255
VALUE_256 = "v" * 256
TRACESTATE_CASES = [
    pytest.param(["foo=bar"], (("foo", "bar"),), id="single"),
    pytest.param(["foo=bar,baz=qux"], (("foo", "bar"), ("baz", "qux")), id="two"),
    pytest.param(["foo=bar , \tbaz=qux"], (("foo", "bar"), ("baz", "qux")), id="ows-around-comma"),
    pytest.param(["foo=bar", "baz=qux"], (("foo", "bar"), ("baz", "qux")), id="two-headers-joined"),
    pytest.param(["", "foo=1", ""], (("foo", "1"),), id="empty-headers"),
    pytest.param(["foo=1,,, ,bar=2"], (("foo", "1"), ("bar", "2")), id="empty-members"),
    pytest.param([""], (), id="empty"),
    pytest.param([], (), id="absent"),
    pytest.param(["tenant@system=x"], (("tenant@system", "x"),), id="at-sign"),
    pytest.param(["1tenant@sys-tem_*/=x"], (("1tenant@sys-tem_*/", "x"),), id="at-sign-digit-first"),
    pytest.param(["a0_-*/=x"], (("a0_-*/", "x"),), id="key-charset"),
    pytest.param([f"{KEY_256}=x"], ((KEY_256, "x"),), id="key-256"),
    pytest.param([f"{KEY_256}b=x"], None, id="key-257"),
    pytest.param([f"{'t' * 242}@s=x"], ((f"{'t' * 242}@s", "x"),), id="no-level1-tenant-limit"),
    pytest.param([f"t@{'s' * 15}=x"], ((f"t@{'s' * 15}", "x"),), id="no-level1-system-limit"),
    pytest.param([f"t@{'s' * 254}=x"], ((f"t@{'s' * 254}", "x"),), id="at-sign-key-256"),
    pytest.param([f"t@{'s' * 255}=x"], None, id="at-sign-key-257"),
    pytest.param(["t@1sys=x"], (("t@1sys", "x"),), id="digit-after-at"),
    pytest.param(["t@=x"], (("t@", "x"),), id="at-sign-last"),
    pytest.param(["a@b@c=x"], (("a@b@c", "x"),), id="two-at-signs"),
    pytest.param(["@sys=x"], None, id="at-sign-first"),
    pytest.param(["1foo=bar"], (("1foo", "bar"),), id="digit-first"),
    pytest.param(["_foo=bar"], None, id="underscore-first"),
    pytest.param(["Foo=bar"], None, id="uppercase-key"),
    pytest.param(["fo.o=bar"], None, id="key-illegal-char"),
    pytest.param(["=bar"], None, id="empty-key"),
    pytest.param(["foo="], None, id="empty-value"),
    pytest.param(["foo"], None, id="no-equals"),
    pytest.param(["foo=bar=baz"], None, id="equals-in-value"),
    pytest.param(["foo=b ar"], (("foo", "b ar"),), id="space-inside-value"),
    pytest.param(["foo= bar"], ((("foo", " bar")),), id="leading-space-in-value"),
    pytest.param(["foo=bar\x7f"], None, id="del-in-value"),
    pytest.param(["foo=b\tar"], None, id="tab-in-value"),
    pytest.param(["foo=b\u00e9"], None, id="non-ascii-value"),
    pytest.param(["foo= "], None, id="value-only-space"),
    pytest.param([f"foo={VALUE_256}"], (("foo", VALUE_256),), id="value-256"),
    pytest.param([f"foo={VALUE_256}v"], None, id="value-257"),
    pytest.param(
        ["foo=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"],
        (("foo", "!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"),),
        id="value-punct",
    ),
    pytest.param(["foo=1,foo=2"], (("foo", "1"),), id="duplicate-key-dropped-alone"),
    pytest.param(["foo=1", "bar=2,foo=3"], (("foo", "1"), ("bar", "2")), id="duplicate-key-across-headers"),
    pytest.param(["foo=1,foo=bad value,"], (("foo", "1"),), id="duplicate-with-space-in-value"),
    pytest.param(["foo=1,foo=x=y"], None, id="duplicate-still-checked"),
    pytest.param(
        [",".join(f"k{i}=v" for i in range(32)) + ",k0=again"],
        tuple((f"k{i}", "v") for i in range(32)),
        id="32-members-and-a-duplicate",
    ),
    pytest.param(["foo=1,bad key=2"], None, id="one-bad-member-drops-all"),
    pytest.param(
        [",".join(f"k{i}=v" for i in range(32))], tuple((f"k{i}", "v") for i in range(32)), id="32-members"
    ),
    pytest.param([",".join(f"k{i}=v" for i in range(33))], None, id="33-members"),
    pytest.param(
        [",".join(f"k{i}=v" for i in range(16)), ",".join(f"k{i}=v" for i in range(16, 32))],
        tuple((f"k{i}", "v") for i in range(32)),
        id="32-members-in-two-headers",
    ),
    pytest.param(
        [",".join(f"k{i}=v" for i in range(16)), ",".join(f"k{i}=v" for i in range(16, 33))],
        None,
        id="33-members-in-two-headers",
    ),
    pytest.param(["k=v" + "," * 200], (("k", "v"),), id="many-empty-members"),
    pytest.param(["k=" + "v" * (MAX_TRACESTATE_LENGTH + 1)], None, id="over-length-cap"),
]


@pytest.mark.parametrize(("values", "expected"), TRACESTATE_CASES)
def test_tracestate_table(values: list[str], expected: tuple[tuple[str, str], ...] | None) -> None:
    """Each tracestate case parses (or is dropped whole) exactly as the W3C grammar says."""
    assert parse_tracestate(values) == expected
    assert parse_tracestate([v.encode("utf-8") for v in values]) == expected


def test_tracestate_round_trip() -> None:
    """format_tracestate writes the canonical header that parses back to the same members."""
    members = (("foo", "bar"), ("t@s", "a b"))
    assert format_tracestate(members) == "foo=bar,t@s=a b"
    assert parse_tracestate([format_tracestate(members)]) == members


# -- extract: headers as the server gives them -------------------------------------------------


def test_extract_valid_context() -> None:
    """A valid traceparent and tracestate come out as one TraceContext."""
    ctx = extract([(b"traceparent", VALID.encode()), (b"tracestate", b"a=1"), (b"tracestate", b"b=2")])
    assert ctx == TraceContext(parse_traceparent(VALID), (("a", "1"), ("b", "2")))  # type: ignore[arg-type]


def test_extract_duplicate_traceparent_is_invalid() -> None:
    """Two traceparent headers (even identical) start a new trace."""
    headers = [(b"traceparent", VALID.encode()), (b"traceparent", VALID.encode()), (b"tracestate", b"a=1")]
    assert extract(headers) is None


def test_extract_invalid_traceparent_drops_tracestate() -> None:
    """An invalid traceparent means no context at all, whatever the tracestate."""
    assert extract([(b"traceparent", b"00-zz"), (b"tracestate", b"a=1")]) is None


def test_extract_invalid_tracestate_keeps_parent() -> None:
    """An invalid tracestate is dropped while the valid traceparent is kept."""
    ctx = extract([(b"traceparent", VALID.encode()), (b"tracestate", b"A=1")])
    assert ctx is not None and ctx.tracestate == () and ctx.parent.to_header() == VALID


def test_extract_no_headers() -> None:
    """No traceparent (a tracestate alone included) means a new trace."""
    assert extract([]) is None
    assert extract([(b"tracestate", b"a=1")]) is None


# -- properties ---------------------------------------------------------------------------------

_lower_hex = "0123456789abcdef"


@given(
    st.integers(1, (1 << 128) - 1),
    st.integers(1, (1 << 64) - 1),
    st.integers(0, 255),
    st.text(" \t", max_size=3),
    st.text(" \t", max_size=3),
)
def test_traceparent_round_trip_property(
    trace_id: int, span_id: int, flags: int, left: str, right: str
) -> None:
    """Any representable ids format to a header that parses back to the same ids, OWS or not."""
    header = format_traceparent(trace_id, span_id, flags)
    assert parse_traceparent(left + header + right) == TraceParent(trace_id, span_id, flags, 0)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_traceparent_never_raises(data: bytes | str) -> None:
    """Arbitrary input never raises; what parses formats to a valid version-00 header."""
    parsed = parse_traceparent(data)
    if parsed is not None:
        assert parse_traceparent(parsed.to_header()) is not None


@given(st.text(_lower_hex + "-", min_size=50, max_size=60))
def test_traceparent_near_miss_property(data: str) -> None:
    """Strings of the right alphabet parse only when the field layout is exact."""
    parsed = parse_traceparent(data)
    if parsed is not None:
        assert data[2] == data[35] == data[52] == "-"
        assert data[:2] != "ff"


_key = st.from_regex(r"\A[a-z0-9][a-z0-9_\-*/@]{0,20}\Z")
_value = st.from_regex(r"\A[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,20}[\x21-\x2b\x2d-\x3c\x3e-\x7e]\Z")


@given(st.dictionaries(_key, _value, max_size=32))
def test_tracestate_round_trip_property(members: dict[str, str]) -> None:
    """Any grammatical tracestate of at most 32 members formats and parses back unchanged."""
    items = tuple(members.items())
    assert parse_tracestate([format_tracestate(items)]) == items


@given(st.lists(st.one_of(st.binary(max_size=100), st.text(max_size=100)), max_size=5))
def test_tracestate_never_raises(values: list[bytes | str]) -> None:
    """Arbitrary header values never raise; a parse is within the member limit."""
    parsed = parse_tracestate(values)
    if parsed is not None:
        assert len(parsed) <= 32


@given(st.lists(st.tuples(st.sampled_from([b"traceparent", b"tracestate", b"x"]), st.binary(max_size=80))))
def test_extract_never_raises(headers: list[tuple[bytes, bytes]]) -> None:
    """extract never raises on arbitrary header lists."""
    extract(headers)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([b"," * 5_000_000], id="commas"),
        pytest.param([b"a=" + b"b" * 5_000_000], id="one-huge-value"),
        pytest.param([b"k=v"] * 200_000, id="many-headers"),
        pytest.param([b" " * 5_000_000], id="spaces"),
    ],
)
def test_tracestate_hostile_sizes_are_fast(values: list[bytes]) -> None:
    """Megabytes of tracestate are refused in well under a second (linear, capped before split)."""
    start = time.perf_counter()
    assert parse_tracestate(values) is None
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b" " * 5_000_000 + VALID.encode(), id="leading-spaces"),
        pytest.param(
            b"cc-" + TRACE.encode() + b"-" + SPAN.encode() + b"-01-" + b"x" * 5_000_000, id="future-huge"
        ),
        pytest.param(b"0" * 5_000_000, id="zeros"),
    ],
)
def test_traceparent_hostile_sizes_are_fast(value: bytes) -> None:
    """Megabytes of traceparent parse (or fail) in linear time."""
    start = time.perf_counter()
    parse_traceparent(value)
    assert time.perf_counter() - start < 1.0


def test_linear_time_scaling() -> None:
    """Ten times the input costs about ten times the time, not a hundred (no quadratic paths)."""

    def cost(n: int) -> float:
        values = [b"k=v," * (n // 4)]
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            parse_tracestate(values)
            parse_traceparent(b" " * n)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(200_000), cost(2_000_000)
    assert large < small * 40 + 0.05


@settings(max_examples=25)
@given(st.binary(min_size=1, max_size=24), st.sampled_from([b"traceparent", b"tracestate"]))
def test_hostile_repetition_is_linear(pattern: bytes, name: bytes) -> None:
    """Any short pattern repeated to a megabyte, in either header, is handled in well under a second."""
    value = pattern * (1_000_000 // len(pattern))
    start = time.perf_counter()
    extract([(name, value), (b"traceparent", VALID.encode()), (b"tracestate", value)])
    assert time.perf_counter() - start < 1.0
