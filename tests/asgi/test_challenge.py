"""Bearer challenges: RFC 6750 §3 parameters, RFC 9110 §5.6.4 quoted-strings."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.challenge import bearer_challenge, quoted_string

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string and §5.5 field-value, written out independently
# of the module under test so a wrong escape cannot agree with itself.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
_PARAM = re.compile(rf"({_TOKEN})=(?:({_TOKEN})|{_QUOTED})")
_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")
_FIELD_VALUE = re.compile(r"[\x21-\x7e\x80-\xff](?:[\t \x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?")

# A realm is 1-64 printable ASCII characters, not all of them spaces (check_str refuses blank text).
printable_ascii = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=64
).filter(str.strip)
scope_token = st.text(st.sampled_from("!#$%&'()*+,-./:;<=>?@[]^_`{|}~abcXYZ019"), min_size=1, max_size=12)


def unquote(quoted: str) -> str:
    """The text of a quoted-string's content: each quoted-pair stands for its second character."""
    return re.sub(r"\\(.)", r"\1", quoted, flags=re.DOTALL)


def parse_challenge(header: bytes) -> tuple[str, dict[str, str]]:
    """One challenge (RFC 9110 §11.3) as its scheme and auth-params; fails on anything else."""
    text = header.decode("latin-1")
    assert _FIELD_VALUE.fullmatch(text), text
    scheme, _, rest = text.partition(" ")
    assert re.fullmatch(_TOKEN, scheme)
    params: dict[str, str] = {}
    position = 0
    while True:
        match = _PARAM.match(rest, position)
        assert match is not None, rest[position:]
        name, token, quoted = match.groups()
        assert name.lower() not in params, f"{name} twice"
        params[name.lower()] = token if token is not None else unquote(quoted)
        position = match.end()
        if position == len(rest):
            return scheme, params
        separator = _SEPARATOR.match(rest, position)
        assert separator is not None, rest[position:]
        position = separator.end()


def test_challenges_as_clients_see_them() -> None:
    """No credentials: realm only; a refusal adds its error code, a missing permission its scope."""
    assert bearer_challenge("api") == b'Bearer realm="api"'
    assert bearer_challenge("api", error="invalid_token") == b'Bearer realm="api", error="invalid_token"'
    assert bearer_challenge("platform", error="insufficient_scope", scope="create_org") == (
        b'Bearer realm="platform", error="insufficient_scope", scope="create_org"'
    )


def test_quotes_and_backslashes_in_a_realm_are_escaped() -> None:
    """A quote cannot close the realm early and append a parameter of the caller's choosing."""
    header = bearer_challenge('a", error="invalid_token')
    assert header == b'Bearer realm="a\\", error=\\"invalid_token"'
    assert parse_challenge(header)[1] == {"realm": 'a", error="invalid_token'}
    assert quoted_string("back\\slash") == '"back\\\\slash"'


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"realm": ""}, ValueError),
        ({"realm": "x" * 65}, ValueError),
        ({"realm": "a\r\nX-Injected: 1"}, ValueError),
        ({"realm": "caf\u00e9"}, ValueError),
        ({"realm": b"api"}, TypeError),
        ({"realm": "api", "error": "invalid_scope"}, ValueError),
        ({"realm": "api", "scope": 'a"b'}, ValueError),
        ({"realm": "api", "scope": "a  b"}, ValueError),
        ({"realm": "api", "scope": ""}, ValueError),
        ({"realm": "api", "scope": ["a"]}, TypeError),
    ],
)
def test_what_a_challenge_cannot_carry_is_refused(options: dict[str, object], error: type[Exception]) -> None:
    """A realm outside printable ASCII, an unknown error code or a malformed scope is refused."""
    name = "error" if "error" in options else "scope" if "scope" in options else "realm"
    with pytest.raises(error, match=name):
        bearer_challenge(**options)  # type: ignore[arg-type]


@given(
    realm=printable_ascii,
    error=st.sampled_from([None, "invalid_request", "invalid_token", "insufficient_scope"]),
    scopes=st.none() | st.lists(scope_token, min_size=1, max_size=4),
)
def test_property_a_challenge_is_a_header_value_whose_parameters_round_trip(
    realm: str, error: str | None, scopes: list[str] | None
) -> None:
    """Any accepted realm and scope come back unchanged from a quoted-string parser."""
    scope = None if scopes is None else " ".join(scopes)
    header = bearer_challenge(realm, error=error, scope=scope)  # type: ignore[arg-type]
    scheme, params = parse_challenge(header)
    assert scheme == "Bearer"
    expected = {"realm": realm}
    if error is not None:
        expected["error"] = error
    if scope is not None:
        expected["scope"] = scope
    assert params == expected


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")))
def test_property_quoted_string_round_trips(text: str) -> None:
    """Every latin-1 text without control characters survives quoting and unquoting."""
    quoted = quoted_string(text)
    match = re.fullmatch(_QUOTED, quoted)
    assert match is not None
    assert unquote(match.group(1)) == text
