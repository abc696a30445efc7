"""run_migrations: the kit's schema, every migration reversible, safe under concurrent runs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from asgi_kit.cli import main
from asgi_kit.database import (
    DatabaseUnavailableError,
    MigrationError,
    MigrationLockError,
    break_migration_lock,
    pending_migrations,
    rollback_migrations,
    run_migrations,
)
from asgi_kit.database.migrations import DEFAULT_MIGRATIONS_PATH, yoyo_url
from asgi_kit.database.postgres import postgres_conninfo
from tests.database.conftest import PASSWORD

pytestmark = pytest.mark.postgres

ALL = [
    "0001_organizations_users",
    "0002_api_keys",
    "0003_usage",
    "0004_token_revocation",
    "0005_api_key_events",
    "0006_usage_request_id",
    "0007_budget_leases",
]
TABLES = {
    "organizations",
    "users",
    "api_keys",
    "usage",
    "refresh_token_families",
    "revoked_tokens",
    "used_refresh_tokens",
    "budget_leases",
}


def tables(url: str) -> set[str]:
    with psycopg.connect(postgres_conninfo(url), connect_timeout=5) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows if not row[0].startswith("_yoyo") and not row[0].startswith("yoyo")}


def test_applies_schema_once(fresh_database: Callable[[], str]) -> None:
    """The first run applies every migration in order; the second applies none."""
    url = fresh_database()
    assert pending_migrations(url) == ALL
    assert run_migrations(url) == ALL
    assert tables(url) == TABLES
    assert run_migrations(url) == []
    assert pending_migrations(url) == []


def test_every_migration_rolls_back(fresh_database: Callable[[], str]) -> None:
    """Each migration has a rollback file, and rolling all back leaves no kit table."""
    for migration in ALL:
        assert (DEFAULT_MIGRATIONS_PATH / f"{migration}.rollback.sql").is_file()
    url = fresh_database()
    run_migrations(url)
    assert rollback_migrations(url, count=1) == [ALL[-1]]
    assert rollback_migrations(url) == ALL[-2::-1]
    assert tables(url) == set()
    assert run_migrations(url) == ALL


def test_four_processes_at_once(fresh_database: Callable[[], str]) -> None:
    """Four processes migrating an empty database: each migration applied exactly once, none fails."""
    url = fresh_database()
    code = "import json, sys; from asgi_kit.database import run_migrations; print(json.dumps(run_migrations(sys.argv[1])))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err
            assert PASSWORD not in out + err
            outputs.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    applied = [m for out in outputs for m in out]
    assert sorted(applied) == ALL
    with psycopg.connect(postgres_conninfo(url), connect_timeout=5) as conn:
        rows = conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
    assert sorted(r[0] for r in rows) == ALL


def test_stale_lock_names_the_fix(fresh_database: Callable[[], str]) -> None:
    """A lock left by a dead process fails fast with a message naming break-lock; breaking it heals."""
    url = fresh_database()
    run_migrations(url)
    with psycopg.connect(postgres_conninfo(url), autocommit=True) as conn:
        conn.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")
    with pytest.raises(MigrationLockError) as info:
        run_migrations(url, lock_timeout=0.5)
    message = str(info.value)
    assert "break-lock" in message and "999999" in message
    assert PASSWORD not in message
    break_migration_lock(url)
    assert run_migrations(url, lock_timeout=0.5) == []


def test_concurrent_run_times_out_on_advisory_lock(fresh_database: Callable[[], str]) -> None:
    """A run that waits longer than lock_timeout for another run gives MigrationLockError."""
    from asgi_kit.database.migrations import ADVISORY_LOCK_KEY

    url = fresh_database()
    with psycopg.connect(postgres_conninfo(url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        with pytest.raises(MigrationLockError, match="another process"):
            run_migrations(url, lock_timeout=0.3)


def test_failing_migration_is_rolled_back(fresh_database: Callable[[], str], tmp_path: Path) -> None:
    """A broken migration raises MigrationError and leaves nothing behind."""
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE t_ok (id int);\nSELECT * FROM no_such_table;\n")
    (tmp_path / "0001_bad.rollback.sql").write_text("DROP TABLE t_ok;\n")
    url = fresh_database()
    with pytest.raises(MigrationError, match="no_such_table") as info:
        run_migrations(url, tmp_path)
    assert info.value.sqlstate == "42P01"
    assert "t_ok" not in tables(url)


def test_custom_path_and_url_forms(fresh_database: Callable[[], str], tmp_path: Path) -> None:
    """A user directory of migrations applies; postgres:// and +psycopg URLs are accepted."""
    (tmp_path / "0001_extra.sql").write_text("CREATE TABLE extra (id int);\n")
    (tmp_path / "0001_extra.rollback.sql").write_text("DROP TABLE extra;\n")
    url = fresh_database()
    assert run_migrations(url.replace("postgresql://", "postgres://", 1), tmp_path) == ["0001_extra"]
    assert run_migrations(url.replace("postgresql://", "postgresql+psycopg://", 1), tmp_path) == []
    assert yoyo_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"


def test_bad_arguments() -> None:
    """A missing directory, a bad timeout or a non-postgres URL are ValueErrors; a str timeout a TypeError."""
    with pytest.raises(ValueError, match="migrations_path"):
        run_migrations("postgresql://u@h/d", "/no/such/dir")
    with pytest.raises(ValueError, match="lock_timeout"):
        run_migrations("postgresql://u@h/d", lock_timeout=0)
    with pytest.raises(ValueError, match="postgresql://"):
        run_migrations("sqlite:///x")
    with pytest.raises(TypeError, match="lock_timeout"):
        run_migrations("postgresql://u@h/d", lock_timeout="5")  # type: ignore[arg-type]


def test_unreachable_database(caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable server gives DatabaseUnavailableError without the password anywhere."""
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x"
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseUnavailableError) as info:
        run_migrations(url)
    assert PASSWORD not in str(info.value) and PASSWORD not in caplog.text
    for call in (pending_migrations, break_migration_lock):
        with pytest.raises(DatabaseUnavailableError):
            call(url)  # type: ignore[operator]


def test_cli_migrate(fresh_database: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    """asgi-kit migrate lists, applies, reports up to date, and breaks a lock; never prints the URL."""
    url = fresh_database()
    assert main(["migrate", "--database-url", url, "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"pending: {m}" for m in ALL]
    assert main(["migrate", "--database-url", url]) == 0
    assert capsys.readouterr().out.splitlines() == [f"applied: {m}" for m in ALL]
    assert main(["migrate", "--database-url", url]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date"
    assert main(["migrate", "--database-url", url, "--list"]) == 0
    assert capsys.readouterr().out.strip() == "no pending migrations"
    assert main(["migrate", "--database-url", url, "--break-lock"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "migration lock removed"
    assert PASSWORD not in out.out + out.err


def test_cli_migrate_from_environment(
    fresh_database: Callable[[], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL can come from ASGI_KIT_DATABASE__URL; without any URL the command exits 2."""
    monkeypatch.setenv("ASGI_KIT_DATABASE__URL", fresh_database())
    assert main(["migrate"]) == 0
    assert "applied: 0001_organizations_users" in capsys.readouterr().out
    monkeypatch.delenv("ASGI_KIT_DATABASE__URL")
    assert main(["migrate"]) == 2
    assert "ASGI_KIT_DATABASE__URL" in capsys.readouterr().err


def test_cli_migrate_error_exit(capsys: pytest.CaptureFixture[str]) -> None:
    """A database error exits 1 with a clean message and no password."""
    assert main(["migrate", "--database-url", f"postgresql://u:{PASSWORD}@127.0.0.1:1/x"]) == 1
    err = capsys.readouterr().err
    assert "could not connect" in err and PASSWORD not in err


def test_subprocess_entry_point(fresh_database: Callable[[], str]) -> None:
    """python -m asgi_kit.cli migrate works from a fresh process."""
    env = {**os.environ, "ASGI_KIT_DATABASE__URL": fresh_database()}
    proc = subprocess.run(
        [sys.executable, "-m", "asgi_kit.cli", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "applied: 0006_usage_request_id" in proc.stdout
