"""A private PostgreSQL cluster that a test may stop and start (the shared one on 5432, never).

``initdb`` into a temporary directory owned by the ``postgres`` user, ``pg_ctl start`` on a free
127.0.0.1 port with its socket in that directory. :meth:`PrivatePostgres.stop` and
:meth:`PrivatePostgres.start` simulate an outage; the cluster is always stopped and removed
when the context ends. Needs root (to run the server as ``postgres``) or to run as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness.servers import free_port


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivatePostgres:
    """One private cluster: ``url`` to connect, ``stop()``/``start()`` for outages."""

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self._bin = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _ctl(self, *args: str, timeout: float = 30.0) -> None:
        subprocess.run(
            _as_postgres([str(self._bin / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def init(self) -> None:
        subprocess.run(
            _as_postgres(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("start", "-w", "-t", "30", "-l", str(self.root / "log"), "-o", options)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast", "-w", "-t", "30")

    @property
    def running(self) -> bool:
        result = subprocess.run(
            _as_postgres([str(self._bin / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            timeout=10,
        )
        return result.returncode == 0


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private cluster, stopped and deleted afterwards (skips when it cannot be made)."""
    bin_dir = _bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl) to run a private cluster")
    root = Path(tempfile.mkdtemp(prefix="asgi-kit-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = PrivatePostgres(bin_dir, root, free_port())
    try:
        cluster.init()
        cluster.start()
        deadline = time.monotonic() + 10
        while not cluster.running and time.monotonic() < deadline:  # pragma: no cover - start -w waits
            time.sleep(0.1)
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["PrivatePostgres", "private_postgres"]
