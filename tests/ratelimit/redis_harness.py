"""Redis for the rate-limit tests: the shared server (own key prefix per test), a private one to stop.

The shared server at 127.0.0.1:6379 is never stopped or flushed: each test writes under its own
prefix and deletes only those keys. A test that must stop Redis starts a private
``redis-server`` on a free port (no persistence) and stops and starts that one, by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import Any

import pytest

from tests.harness.servers import free_port

SHARED_URL = os.environ.get("ASGI_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The shared Redis URL; skips (or fails with ASGI_KIT_REQUIRE_REDIS=1) when it is not answering."""
    import redis

    try:
        client = redis.Redis.from_url(SHARED_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        if os.environ.get("ASGI_KIT_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required but not reachable at {SHARED_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {SHARED_URL}")
    return SHARED_URL


def new_prefix() -> str:
    return f"asgi-kit-test:{uuid.uuid4().hex}:"


def delete_prefix(url: str, prefix: str) -> None:
    """Delete this test's keys (and only them)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def counting_connection_class() -> tuple[type[Any], list[int]]:
    """A redis-py asyncio Connection class that counts the commands it sends (one each round trip)."""
    from redis.asyncio import Connection

    sent = [0]

    class CountingConnection(Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            sent[0] += 1
            await super().send_packed_command(command, check_health)

    return CountingConnection, sent


class PrivateRedis:
    """A redis-server of this test's own, on a free port, that the test may stop and start."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
                client.ping()
                client.close()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise TimeoutError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
