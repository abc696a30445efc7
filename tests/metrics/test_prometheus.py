"""A real Prometheus server scrapes metrics_app under uvicorn; its query API returns our counts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asgi_kit._asgi.paths import route_path
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.metrics import MetricsMiddleware, metrics_app, register_metrics
from tests.harness.apps import build_app
from tests.harness.servers import free_port, serve

PROMETHEUS = shutil.which("prometheus")
REQUESTS = 7
DEADLINE = 30.0


def require_prometheus() -> str:
    if PROMETHEUS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the prometheus binary is required in CI (apt-get install prometheus)")
        pytest.skip("no prometheus binary on PATH (install the Debian package `prometheus`)")
    return PROMETHEUS


def with_metrics_endpoint(app: ASGIApp, scrape: ASGIApp) -> ASGIApp:
    """Serve ``scrape`` at /metrics beside ``app``, as a user would mount it."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope) == "/metrics":
            await scrape(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[object]:
    """Start Prometheus scraping a target every second; stop it by PID at the end."""
    binary = require_prometheus()
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: asgi-kit\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        log = (tmp_path / "prometheus.log").open("wb")
        command = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}"]
        command += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        log.close()
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def query(prometheus_url: str, promql: str) -> float | None:
    try:
        response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=2)
    except httpx.HTTPError:
        return None  # still starting
    if response.status_code != 200:
        return None
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.mark.integration
@pytest.mark.slow
def test_prometheus_scrapes_route_template_counts(prometheus_for: object) -> None:
    """Prometheus' query API reports http_requests_total for the route template after real traffic."""
    metrics = register_metrics("prom-it")
    app = MetricsMiddleware(build_app("starlette"), metrics=metrics, exclude_paths=["/metrics"])
    with serve(with_metrics_endpoint(app, metrics_app(metrics.registry))) as served:
        prometheus_url = prometheus_for(served.port)  # type: ignore[operator]
        with httpx.Client(base_url=served.url, timeout=5) as client:
            for i in range(REQUESTS):
                assert client.get(f"/items/{i}").status_code == 200
            assert client.get("/no/such/path").status_code == 404
        promql = (
            'sum(http_requests_total{job="asgi-kit",route="/items/{item_id}",status="200",service="prom-it"})'
        )
        deadline = time.monotonic() + DEADLINE
        value = None
        while time.monotonic() < deadline and value != REQUESTS:
            value = query(prometheus_url, promql)
            time.sleep(0.25)  # polling an external process: there is no event to wait on
        assert value == REQUESTS, f"Prometheus reported {value!r} for {promql}"
        assert query(prometheus_url, 'sum(http_requests_total{route="<unmatched>"})') == 1.0
        assert query(prometheus_url, 'count(http_requests_total{route=~"/items/[0-9]+"})') is None
