"""The kit under the ``granian --interface asgi`` command itself, in its own process."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.harness.servers import serve_process
from tests.matrix._granian_target import SECRET

pytestmark = pytest.mark.integration


async def test_stack_under_granian_process() -> None:
    """Served by a granian process: auth, problems, request id, and a 401 labelled with its route."""
    from asgi_kit.auth import JWTConfig, JWTManager

    jwt = JWTManager(JWTConfig(secret=SECRET, issuer="https://issuer.test", audience="granian"))
    token = jwt.generate_token_pair("u-1", "org-1", "org_user").access_token
    with serve_process("tests.matrix._granian_target:app") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
            denied = await client.get("/items/42")
            assert denied.status_code == 401
            assert denied.headers["content-type"] == "application/problem+json"
            assert denied.json()["request_id"] == denied.headers["x-request-id"]
            ok = await client.get("/items/42", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json() == {"item_id": 42}
            exposition = (await client.get("/metrics")).text
    for status in (401, 200):
        assert re.search(
            rf'http_requests_total\{{[^}}]*route="/items/\{{item_id\}}"[^}}]*status="{status}"', exposition
        )
    assert "/items/42" not in exposition
