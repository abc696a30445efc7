"""``asgi-kit token`` and ``asgi-kit api-key``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asgi_kit.auth import JWTConfig, JWTManager, hash_api_key, parse_api_key
from asgi_kit.cli import main
from tests.auth.helpers import AUDIENCE, ISSUER, SECRET, pem_private, rsa_key


async def test_token_prints_a_valid_access_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed token validates under the same secret, issuer and audience."""
    monkeypatch.setenv("ASGI_KIT_JWT__SECRET", SECRET)
    code = main(["token", "--user-id", "u1", "--org-id", "o1", "--role", "org_admin", "--issuer", ISSUER,
                 "--audience", AUDIENCE, "--scope", "a", "--scope", "b"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0
    token = out.out.strip()
    assert SECRET not in out.out + out.err
    manager = JWTManager(JWTConfig(secret=SECRET, issuer=ISSUER, audience=AUDIENCE))
    claims = await manager.validate_jwt(token)
    assert (claims.sub, claims.org_id, claims.role, claims.scopes) == ("u1", "o1", "org_admin", ("a", "b"))


def test_token_pair_as_json_with_rsa_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--pair prints the pair as JSON; RS256 reads the private key from a file."""
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem_private(rsa_key()))
    code = main(["token", "--user-id", "u", "--issuer", ISSUER, "--audience", AUDIENCE, "--algorithm", "RS256",
                 "--private-key-file", str(key_file), "--pair", "--ttl", "60"])  # fmt: skip
    assert code == 0
    pair = json.loads(capsys.readouterr().out)
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 60
    assert pair["access_token"].count(".") == 2


def test_token_secret_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--secret-file reads the HMAC secret from a file."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    assert main(["token", "--user-id", "u", "--issuer", ISSUER, "--audience", AUDIENCE,
                 "--secret-file", str(secret_file)]) == 0  # fmt: skip
    assert capsys.readouterr().out.count(".") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["token", "--user-id", "u"], "--issuer and --audience"),
        (
            ["token", "--user-id", "u", "--issuer", "i", "--audience", "a", "--secret-env", "NOPE_NOT_SET"],
            "NOPE",
        ),
        (
            ["token", "--user-id", "u", "--issuer", "i", "--audience", "a", "--algorithm", "ES256"],
            "private-key",
        ),
    ],
)
def test_token_errors_are_reported(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing issuer, secret or key exits 2 with a message."""
    monkeypatch.delenv("ASGI_KIT_JWT__ISSUER", raising=False)
    monkeypatch.delenv("ASGI_KIT_JWT__AUDIENCE", raising=False)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_api_key_prints_key_and_hash(capsys: pytest.CaptureFixture[str]) -> None:
    """api-key prints a parseable key, its id and its SHA-256 hash."""
    assert main(["api-key", "--json", "--prefix", "pk", "--environment", "test"]) == 0
    result = json.loads(capsys.readouterr().out)
    parsed = parse_api_key(result["api_key"], prefix="pk", environment="test")
    assert result["key_id"] == parsed.key_id
    assert result["key_hash"] == hash_api_key(result["api_key"])
    assert result["pepper_version"] == 0


def test_api_key_with_pepper(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With --pepper-env the hash is the HMAC under that pepper, with its version."""
    monkeypatch.setenv("MY_PEPPER", "p" * 32)
    assert main(["api-key", "--pepper-env", "MY_PEPPER", "--pepper-version", "3"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert lines["key_hash"] == hash_api_key(lines["api_key"], pepper=b"p" * 32)
    assert lines["pepper_version"] == "3"


@pytest.mark.parametrize(("pepper", "version"), [("short", "1"), ("p" * 32, "0")])
def test_api_key_pepper_errors(
    pepper: str, version: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short pepper or a version below 1 exits 2."""
    monkeypatch.setenv("MY_PEPPER", pepper)
    assert main(["api-key", "--pepper-env", "MY_PEPPER", "--pepper-version", version]) == 2
    assert "error" in capsys.readouterr().err
