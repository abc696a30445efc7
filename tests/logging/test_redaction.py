"""Redaction helpers: secrets never survive, control characters never pass, lengths are bounded."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.logging import redact_url_credentials
from asgi_kit.logging.proxies import TrustedProxies
from asgi_kit.logging.redaction import (
    DEFAULT_REDACT_HEADERS,
    DEFAULT_REDACT_QUERY_PARAMS,
    REDACTED,
    TRUNCATED,
    bound,
    escape_control,
    redact_header,
    redact_query,
    safe_text,
)

CONTROL = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]}
SECRET = "S3CR3TVALUE"


def assert_clean(text: str, limit: int) -> None:
    assert len(text) <= limit
    assert not CONTROL & set(text)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", ""),
        (b"page=2&sort=asc", "page=2&sort=asc"),
        (b"api_key=abc&page=2", f"api_key={REDACTED}&page=2"),
        (b"TOKEN=abc", f"TOKEN={REDACTED}"),
        (b"Api%5FKey=abc", f"Api%5FKey={REDACTED}"),
        (b"access+token=x&access_token=y", f"access+token=x&access_token={REDACTED}"),
        (b"a=1;password=hunter2", f"a=1;password={REDACTED}"),
        (b"code=xyz&state=1", f"code={REDACTED}&state=1"),
        (b"sig=1&sig=2", f"sig={REDACTED}&sig={REDACTED}"),
        (b"token", "token"),
        (b"X-Amz-Signature=deadbeef", f"X-Amz-Signature={REDACTED}"),
        (b"q=%0d%0a", "q=%0d%0a"),
        (b"q=a\r\nb", "q=a\\x0d\\x0ab"),
    ],
)
def test_redact_query_table(query: bytes, expected: str) -> None:
    """Secret parameters are masked whatever their case, encoding or separator; others are kept."""
    assert redact_query(query) == expected


@pytest.mark.parametrize(
    "query",
    ["page=2&sort=asc", " Token =x&a=1", "a=1;secret=2", "x=1&PASSWORD", "=1&&key="],
)
def test_redact_query_shortcut_agrees_with_the_full_parse(query: str) -> None:
    """Queries naming no secret skip the parse; the answer is the one the full parse gives."""
    full = "".join(
        f"{part.partition('=')[0]}={REDACTED}"
        if part.partition("=")[1] and part.partition("=")[0].strip().lower() in DEFAULT_REDACT_QUERY_PARAMS
        else part
        for part in re.split(r"([&;])", query)
    )
    assert redact_query(query) == full


def test_safe_text_keeps_short_printable_text_as_is() -> None:
    """The common value comes back as the same object; long or unprintable text is still cleaned."""
    text = "curl/8.5"
    assert safe_text(text, 32) is text
    assert safe_text("a" * 40, 32).endswith(TRUNCATED)
    assert safe_text("a\nb", 32) == "a\\x0ab"


def test_redact_query_extra_secrets() -> None:
    """Extra parameter names can be declared secret."""
    assert redact_query("otp=1&x=2", secrets=frozenset({"otp"})) == f"otp={REDACTED}&x=2"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(DEFAULT_REDACT_QUERY_PARAMS)),
            st.text(min_size=1, max_size=20).filter(lambda s: "&" not in s and ";" not in s),
        ),
        min_size=1,
        max_size=5,
    ),
    st.lists(
        st.tuples(st.text(alphabet="abcdefgh", min_size=1, max_size=5), st.text(max_size=10)), max_size=5
    ),
)
def test_secret_query_values_never_survive(
    secrets: list[tuple[str, str]], others: list[tuple[str, str]]
) -> None:
    """Whatever is around them, the values of secret parameters never appear in the result."""
    params = [(name.upper() if i % 2 else name, SECRET + value) for i, (name, value) in enumerate(secrets)]
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in [*others, *params])
    out = redact_query(query.encode(), limit=4096)
    assert SECRET not in out
    assert out.count(REDACTED) >= len(params)


@given(st.binary(max_size=3000), st.integers(min_value=32, max_value=2048))
def test_redact_query_is_bounded_and_clean(query: bytes, limit: int) -> None:
    """Any query bytes give a result within the limit and without control characters."""
    assert_clean(redact_query(query, limit), limit)


@given(st.binary(max_size=500), st.binary(max_size=3000), st.integers(min_value=32, max_value=1024))
def test_redact_header_is_bounded_and_clean(name: bytes, value: bytes, limit: int) -> None:
    """Any header bytes give a loggable value: bounded, no control characters, never raising."""
    assert_clean(redact_header(name, value, limit), limit)


@given(st.sampled_from(sorted(DEFAULT_REDACT_HEADERS)), st.binary(max_size=200), st.booleans())
def test_credential_headers_are_always_masked(name: str, value: bytes, upper: bool) -> None:
    """Authorization, Cookie, X-API-Key ... are masked whatever their case or value."""
    header = name.upper() if upper else name
    assert redact_header(header.encode(), value) == REDACTED
    assert redact_header(header, value) == REDACTED


def test_redact_header_extra_names() -> None:
    """Extra header names can be declared secret; ordinary headers are kept."""
    assert redact_header("X-Session", "abc", redact={"x-session"}) == REDACTED
    assert redact_header("Accept", "text/html") == "text/html"


@given(st.text(max_size=2000), st.integers(min_value=20, max_value=500))
def test_safe_text_is_bounded_and_clean(text: str, limit: int) -> None:
    """Any text is cut to the limit with its control characters escaped."""
    assert_clean(safe_text(text, limit), limit)


def test_escape_and_bound_examples() -> None:
    """Escapes are visible, printable text passes as is, and cut text is marked."""
    assert escape_control("a\r\nb\x1b[0m\u2028") == "a\\x0d\\x0ab\\x1b[0m\\u2028"
    assert escape_control("caf\u00e9 /x") == "caf\u00e9 /x"
    assert bound("x" * 50, 30) == "x" * (30 - len(TRUNCATED)) + TRUNCATED
    assert bound("short", 30) == "short"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:PASSWORD@h/db", "postgresql://u:REDACTED@h/db"),
        ("dsn=postgres://app:p@ss@db:5432/x done", "dsn=postgres://app:REDACTED@db:5432/x done"),
        ("redis://:pw@cache:6379/0", "redis://:REDACTED@cache:6379/0"),
        ("https://ghp_token@github.com/org/repo", "https://REDACTED@github.com/org/repo"),
        (
            "amqp://guest:guest@rabbit/ and mysql+pymysql://root:r00t@m/db",
            "amqp://guest:REDACTED@rabbit/ and mysql+pymysql://root:REDACTED@m/db",
        ),
        ("http://example.com/a@b", "http://example.com/a@b"),
        ('GET http://t/orders/7?token=abc&page=2 "200"', 'GET http://t/orders/7?token=REDACTED&page=2 "200"'),
        ("https://h/cb?state=1&CODE=xyz#frag", "https://h/cb?state=1&CODE=REDACTED#frag"),
        ("see ?token=abc without a url", "see ?token=abc without a url"),
        ("no urls here", "no urls here"),
    ],
)
def test_redact_url_credentials_table(text: str, expected: str) -> None:
    """URL passwords (and tokens used as user names) are masked; the rest of the text is kept."""
    assert redact_url_credentials(text) == expected


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=10),
    st.text(
        alphabet=st.characters(blacklist_characters="/?#", blacklist_categories=("Z", "C")),
        min_size=1,
        max_size=20,
    ),
)
def test_dsn_password_never_survives(user: str, password: str) -> None:
    """Whatever the password, a DSN's password is gone after redaction."""
    secret = SECRET + password
    out = redact_url_credentials(f"error: postgresql://{user}:{secret}@db.internal:5432/app failed")
    assert SECRET not in out


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ([], "10.0.0.1", b"1.2.3.4", "10.0.0.1"),  # no trusted proxies: the header is ignored
        (["10.0.0.1"], "10.0.0.1", b"1.2.3.4", "1.2.3.4"),
        (["10.0.0.1"], "10.0.0.9", b"1.2.3.4", "10.0.0.9"),  # an untrusted peer cannot spoof
        (["10.0.0.0/8"], "10.1.2.3", b"6.6.6.6, 1.2.3.4, 10.0.0.7", "1.2.3.4"),  # rightmost untrusted
        (["10.0.0.0/8"], "10.1.2.3", b"10.0.0.5, 10.0.0.7", "10.0.0.5"),
        (["*"], "192.168.1.1", b" 1.2.3.4 ,, ", "1.2.3.4"),
        (["::1"], "::1", b"2001:db8::1", "2001:db8::1"),
        (["10.0.0.0/8"], "not-an-ip", b"1.2.3.4", "not-an-ip"),
        (["10.0.0.1"], None, b"1.2.3.4", None),
    ],
)
def test_trusted_proxies(
    trusted: list[str], peer: str | None, forwarded: bytes, expected: str | None
) -> None:
    """X-Forwarded-For is believed only from trusted proxies, read right to left."""
    assert TrustedProxies(trusted).client(peer, forwarded) == expected


def test_trusted_proxies_validation() -> None:
    """Bad proxy entries fail at construction, naming the option."""
    with pytest.raises(ValueError, match="trusted_proxies"):
        TrustedProxies(["10.0.0.0/33"])
    with pytest.raises(ValueError, match="trusted_proxies"):
        TrustedProxies(["proxy.local"])
    with pytest.raises(TypeError, match="trusted_proxies"):
        TrustedProxies("10.0.0.1")
    with pytest.raises(TypeError, match="trusted_proxies"):
        TrustedProxies([10])  # type: ignore[list-item]
    assert "10.0.0.1" in repr(TrustedProxies(["10.0.0.1"]))
    assert not TrustedProxies([])
