"""``uvicorn --workers 2`` with PROMETHEUS_MULTIPROC_DIR: one scrape reports every worker's requests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 40
DEADLINE = 45.0


def wait_until(predicate: object, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)  # polling another process's files and socket: there is no event to wait on
    raise TimeoutError(f"timed out waiting for {what}")


def worker_pids(directory: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("gauge_livesum_*.db")}


def scrape_total(base_url: str, route: str) -> float:
    response = httpx.get(f"{base_url}/metrics", headers={"connection": "close"}, timeout=10)
    response.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == "http_requests_total" and s.labels.get("route") == route:
                total += s.value
    return total


@pytest.fixture
def uvicorn_workers(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """uvicorn with two workers on a free port, stopped by PID at the end."""
    directory = tmp_path / "multiproc"
    directory.mkdir()
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    log = (tmp_path / "uvicorn.log").open("wb")
    command = [sys.executable, "-m", "uvicorn", "tests.metrics.workers_app:app", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", directory, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.integration
@pytest.mark.slow
def test_one_scrape_counts_every_worker_and_dead_workers_are_swept(
    uvicorn_workers: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    """After N requests spread over two workers one scrape reports N; a killed worker's gauge file goes."""
    base_url, directory, proc = uvicorn_workers
    wait_until(lambda: len(worker_pids(directory)) == 2, "both workers to import the app")
    wait_until(lambda: ready(base_url), "the server to accept connections")
    served_by: set[int] = set()
    for i in range(REQUESTS):
        # a new connection per request, so the kernel can hand requests to either worker
        response = httpx.get(f"{base_url}/items/{i}", headers={"connection": "close"}, timeout=10)
        assert response.status_code == 200
        served_by.add(int(response.text))
    assert served_by <= worker_pids(directory)
    assert scrape_total(base_url, "/items/{n}") == REQUESTS

    victim = min(worker_pids(directory))
    os.kill(victim, signal.SIGKILL)
    # uvicorn's supervisor replaces the dead worker; the next scrape sweeps the victim's live gauge
    wait_until(lambda: len(worker_pids(directory) - {victim}) == 2, "a replacement worker")
    assert scrape_total(base_url, "/items/{n}") == REQUESTS
    assert victim not in worker_pids(directory)
    assert proc.poll() is None
