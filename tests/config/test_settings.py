"""Configuration: precedence, file formats, ConfigError, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit.config import ConfigError, KitSettings, load_settings
from asgi_kit.config.settings import settings_data

SECRET = "s" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASGI_KIT_ variable from the outer environment leaks into a test."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("ASGI_KIT_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    """With no source, every section is present and disabled."""
    s = load_settings()
    assert s.service_name == "asgi-kit-service"
    assert not s.jwt.enabled and s.jwt.algorithm == "HS256"
    assert s.database.max_size == 10


def test_precedence_defaults_files_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """defaults < files (later over earlier) < environment < overrides, field by field."""
    toml = write(tmp_path / "a.toml", 'service_name = "from-toml"\n[database]\nmin_size = 2\nmax_size = 20\n')
    js = write(tmp_path / "b.json", json.dumps({"database": {"max_size": 30}, "environment": "from-json"}))
    dotenv = write(tmp_path / "c.env", "ASGI_KIT_DATABASE__TIMEOUT=7\nASGI_KIT_ENVIRONMENT=from-dotenv\n")
    s = load_settings(toml, js, dotenv)
    assert (s.service_name, s.environment) == ("from-toml", "from-dotenv")
    assert (s.database.min_size, s.database.max_size, s.database.timeout) == (2, 30, 7.0)

    monkeypatch.setenv("ASGI_KIT_DATABASE__MAX_SIZE", "40")
    monkeypatch.setenv("ASGI_KIT_SERVICE_NAME", "from-env")
    s = load_settings(toml, js, dotenv)
    assert (s.service_name, s.database.max_size, s.database.min_size) == ("from-env", 40, 2)

    s = load_settings(toml, js, dotenv, service_name="from-override", database={"max_size": 50})
    assert (s.service_name, s.database.max_size, s.database.min_size) == ("from-override", 50, 2)


def test_kitsettings_reads_env_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """KitSettings() alone reads the environment with the nested delimiter."""
    monkeypatch.setenv("ASGI_KIT_JWT__SECRET", SECRET)
    monkeypatch.setenv("ASGI_KIT_JWT__ENABLED", "true")
    s = KitSettings()
    assert s.jwt.enabled and s.jwt.secret is not None
    assert s.jwt.secret.get_secret_value() == SECRET


def test_three_bad_fields_in_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bad field is listed at once, each with its source."""
    toml = write(tmp_path / "bad.toml", "[database]\nmax_size = 0\n")
    monkeypatch.setenv("ASGI_KIT_JWT__LEEWAY", "9999")
    with pytest.raises(ConfigError) as info:
        load_settings(toml, tracing={"sample_ratio": 2})
    err = info.value
    assert sorted(err.fields) == ["database.max_size", "jwt.leeway", "tracing.sample_ratio"]
    text = str(err)
    assert f"file {toml}" in text
    assert "environment variable ASGI_KIT_JWT__LEEWAY" in text
    assert "overrides" in text
    assert isinstance(err, ValueError)


def test_unknown_key_is_an_error() -> None:
    """A typo in a section is reported, not ignored."""
    with pytest.raises(ConfigError, match=r"database\.max_sise"):
        load_settings(database={"max_sise": 3})


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("x.toml", "service_name = ", "cannot be parsed"),
        ("x.json", "{nope", "cannot be parsed"),
        ("x.json", "[1, 2]", "must hold an object"),
        ("x.yaml", "a: 1", "unknown format"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, text: str, reason: str) -> None:
    """Unparseable, non-object and unknown-format files give a ConfigError naming the file."""
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=reason) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is an error, not silently skipped."""
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_database_url_must_be_postgres() -> None:
    """The database URL is checked, and its value is never echoed."""
    with pytest.raises(ConfigError) as info:
        load_settings(database={"url": "mysql://root:hunter2@h/db"})
    assert "hunter2" not in str(info.value) and "database.url" in str(info.value)


def test_options_reveal_secrets_for_middleware_only() -> None:
    """options() gives middleware keywords with secrets revealed and `enabled` left out."""
    s = load_settings(jwt={"secret": SECRET, "issuer": "me"})
    opts = s.jwt.options()
    assert opts["secret"] == SECRET and "enabled" not in opts
    assert "secret" not in s.jwt.options("secret")
    assert SECRET not in json.dumps(settings_data(s))


# A marker prefix keeps the secret from matching unrelated text that happens to be in a repr.
secret_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=40
).map(lambda s: "sEcReT" + s.replace("@", "").replace("/", ""))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=secret_text)
def test_property_secrets_never_shown(secret: str) -> None:
    """No secret appears in repr, str, or a ConfigError, even next to invalid fields."""
    s = load_settings(
        jwt={"secret": secret}, api_keys={"pepper": secret}, database={"url": f"postgresql://u:{secret}@h/d"}
    )
    for text in (repr(s), str(s), repr(s.jwt), str(s.database)):
        assert secret not in text
    with pytest.raises(ConfigError) as info:
        load_settings(jwt={"secret": secret, "leeway": -1}, database={"url": f"mysql://u:{secret}@h/d"})
    assert secret not in str(info.value) and secret not in repr(info.value.problems)
