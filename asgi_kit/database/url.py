"""PostgreSQL URLs: the libpq connection string, and a form safe to log.

Its own module because both the pool (``postgres``) and the migrations read it, and the pool
runs the migrations on start when asked to.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from asgi_kit._asgi.options import check_instance
from asgi_kit._asgi.redaction import REDACTED

_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def _raw_url(database_url: str | SecretStr) -> str:
    check_instance("database_url", database_url, (str, SecretStr), "a postgresql:// URL (str or SecretStr)")
    raw = database_url.get_secret_value() if isinstance(database_url, SecretStr) else database_url
    if not raw.startswith(_SCHEMES):
        # The URL itself is never echoed: it may hold a password.
        raise ValueError("database_url must be a postgresql:// URL")
    return raw


def postgres_conninfo(database_url: str | SecretStr) -> str:
    """The libpq connection string for ``database_url`` (``postgresql+psycopg://`` accepted too)."""
    raw = _raw_url(database_url)
    if raw.startswith("postgresql+psycopg://"):
        return "postgresql://" + raw[len("postgresql+psycopg://") :]
    return raw


def redact_url(database_url: str | SecretStr) -> str:
    """``database_url`` with its password replaced by ``REDACTED``, safe to log."""
    parts = urlsplit(_raw_url(database_url))
    if parts.password is None:
        return urlunsplit(parts)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(
        (parts.scheme, f"{user}:{REDACTED}@{host}{port}", parts.path, parts.query, parts.fragment)
    )


__all__ = ["postgres_conninfo", "redact_url"]
