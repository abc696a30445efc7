"""The demo gateway on PostgreSQL verifies keys from its cache, fed by a listener its lifespan runs."""

from __future__ import annotations

import time

import httpx
import pytest

from asgi_kit.auth import generate_api_key, parse_api_key
from asgi_kit.cli.demo import provision_database
from asgi_kit.demo import build_gateway
from asgi_kit.demo.config import DemoConfig
from asgi_kit.demo.gateway import SERVICE
from tests.database.conftest import admin_execute, database_name
from tests.database.test_key_events_workers import sql
from tests.harness.servers import free_port, serve

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


def listeners(url: str) -> int:
    rows = admin_execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (database_name(url), f"{SERVICE}.api_keys"),
    )
    return int(rows[0][0])


async def test_the_demo_listens_for_key_changes_and_stops_listening_at_shutdown(migrated_url: str) -> None:
    """A revocation by plain SQL is refused by the running demo within 1 s; shutdown closes the listener."""
    port = free_port()
    key = generate_api_key("sk", environment="demo")
    config = DemoConfig(
        port=port, api_key=key, database_url=migrated_url, token_delay=0.0, log_level="WARNING"
    )
    await provision_database(config)
    with serve(build_gateway(config), port=port, lifespan="on") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=5.0) as client:
            headers = {"authorization": f"Bearer {key}"}
            for _ in range(3):
                assert (await client.get("/v1/models", headers=headers)).status_code == 200
            assert listeners(migrated_url) == 1
            sql(
                migrated_url,
                "UPDATE api_keys SET revoked_at = now() WHERE id = %s",
                (parse_api_key(key).key_id,),
            )
            committed = time.monotonic()
            while (await client.get("/v1/models", headers=headers)).status_code == 200:
                assert time.monotonic() - committed < 1.0
    assert listeners(migrated_url) == 0
