"""Property tests of the URL helpers: schemes normalised, passwords never survive redaction."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.database.migrations import yoyo_url
from asgi_kit.database.postgres import postgres_conninfo, redact_url

schemes = st.sampled_from(["postgresql://", "postgres://", "postgresql+psycopg://"])
passwords = st.text(min_size=1, max_size=40).map(lambda s: "PW" + quote(s, safe=""))
databases = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
ports = st.one_of(st.none(), st.integers(1, 65535))


def url(scheme: str, password: str | None, port: int | None, database: str) -> str:
    auth = "app" + (f":{password}" if password else "") + "@"
    return f"{scheme}{auth}db.internal{f':{port}' if port else ''}/{database}"


@given(schemes, passwords, ports, databases)
def test_redaction_removes_the_password(scheme: str, password: str, port: int | None, database: str) -> None:
    """redact_url keeps user, host, port and database but never the password."""
    redacted = redact_url(url(scheme, password, port, database))
    assert password not in redacted
    assert "app:REDACTED@db.internal" in redacted
    assert redacted.endswith(f"/{database}")


@given(schemes, st.one_of(st.none(), passwords), ports, databases)
def test_scheme_normalisation(scheme: str, password: str | None, port: int | None, database: str) -> None:
    """libpq gets postgresql:// or postgres://, yoyo always postgresql+psycopg://, the rest unchanged."""
    raw = url(scheme, password, port, database)
    rest = raw[len(scheme) :]
    assert postgres_conninfo(raw).endswith(rest)
    assert postgres_conninfo(raw).startswith(("postgresql://", "postgres://"))
    assert yoyo_url(raw) == "postgresql+psycopg://" + rest
    assert postgres_conninfo(postgres_conninfo(raw)) == postgres_conninfo(raw)


@given(st.text(max_size=60))
def test_non_postgres_urls_are_refused_without_echo(text: str) -> None:
    """Anything that is not a postgres URL is a ValueError that does not repeat the input."""
    candidate = "x" + text  # never starts with a postgres scheme
    with pytest.raises(ValueError) as info:
        postgres_conninfo(candidate)
    assert str(info.value) == "database_url must be a postgresql:// URL"
