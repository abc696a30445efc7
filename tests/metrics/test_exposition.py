"""metrics_app: formats by Accept, gzip, methods, and multiprocess collection with dead-worker cleanup."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit.metrics import metrics_app, register_metrics, sweep_dead_workers
from asgi_kit.metrics.exposition import pid_alive
from asgi_kit.testing import call_app, make_scope, run_lifespan

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def registry_with_one_request() -> CollectorRegistry:
    metrics = register_metrics("svc")
    metrics.observe("GET", "/items/{item_id}", 200, 0.003, 5)
    return metrics.registry


async def test_text_format_by_default() -> None:
    """Without an Accept header the classic text format is served."""
    response = await call_app(metrics_app(registry_with_one_request()), path="/metrics")
    assert response.status == 200
    assert response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(response.body.decode())}
    assert families["http_requests"].samples[0].value == 1.0
    assert response.header("content-length") == str(len(response.body))


async def test_openmetrics_when_accepted() -> None:
    """Accept: application/openmetrics-text gets OpenMetrics, ending in # EOF."""
    app = metrics_app(registry_with_one_request())
    response = await call_app(
        app, path="/metrics", headers=[("accept", "application/openmetrics-text; version=1.0.0")]
    )
    assert (response.header("content-type") or "").startswith(OPENMETRICS)
    assert response.body.endswith(b"# EOF\n")


async def test_prometheus_scrape_accept_header_gets_openmetrics() -> None:
    """The Accept header Prometheus itself sends selects OpenMetrics."""
    accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    response = await call_app(metrics_app(registry_with_one_request()), headers=[("accept", accept)])
    assert (response.header("content-type") or "").startswith("application/openmetrics-text")


async def test_gzip_when_accepted_and_not_when_disabled() -> None:
    """Accept-Encoding: gzip compresses the body unless gzip=False."""
    registry = registry_with_one_request()
    headers = [("accept-encoding", "gzip, deflate")]
    zipped = await call_app(metrics_app(registry), headers=headers)
    assert zipped.header("content-encoding") == "gzip"
    assert b"http_requests_total" in gzip.decompress(zipped.body)
    plain = await call_app(metrics_app(registry, gzip=False), headers=headers)
    assert plain.header("content-encoding") is None
    assert b"http_requests_total" in plain.body


async def test_name_filter_restricts_output() -> None:
    """name[]= query parameters restrict the output to those metric names."""
    response = await call_app(
        metrics_app(registry_with_one_request()), query_string=b"name[]=http_requests_in_flight"
    )
    assert b"http_requests_in_flight" in response.body
    assert b"http_requests_total" not in response.body


async def test_head_has_headers_and_no_body_and_post_is_405() -> None:
    """HEAD answers without a body; other methods get 405 with Allow."""
    app = metrics_app(registry_with_one_request())
    head = await call_app(app, method="HEAD")
    assert head.status == 200 and head.body == b""
    post = await call_app(app, method="POST")
    assert post.status == 405
    assert post.header("allow") == "GET, HEAD"


async def test_lifespan_and_websocket() -> None:
    """Served alone, it completes lifespan and closes websockets."""
    app = metrics_app(registry_with_one_request())
    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    await app(make_scope("/metrics", type="websocket"), receive, send)  # type: ignore[arg-type]
    assert messages == [{"type": "websocket.close", "code": 1000}]


def test_registry_required_outside_multiprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Single-process mode needs an explicit registry, never the global default one."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(ValueError, match="registry"):
        metrics_app()
    with pytest.raises(TypeError, match="registry"):
        metrics_app(object())  # type: ignore[arg-type]
    assert "metrics_app(multiprocess_dir=None" in repr(metrics_app(CollectorRegistry()))


def test_missing_multiprocess_dir_is_refused(tmp_path: Path) -> None:
    """A multiprocess directory that does not exist fails at construction."""
    with pytest.raises(ValueError, match="multiprocess_dir"):
        metrics_app(multiprocess_dir=tmp_path / "absent")


# -- multiprocess: real worker processes writing real files ---------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from asgi_kit.metrics import register_metrics
    metrics = register_metrics("svc")
    assert metrics.multiprocess
    metrics.request_started()
    for _ in range(int(sys.argv[1])):
        metrics.observe("GET", "/items/{item_id}", 200, 0.01, 2)
    print("ready", flush=True)
    sys.stdin.read()   # stay alive until the test closes stdin
    """
)


def start_worker(directory: Path, requests: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(requests)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stop_worker(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


async def scrape_values(directory: Path) -> dict[str, float]:
    response = await call_app(metrics_app(multiprocess_dir=directory, gzip=False))
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for s in family.samples:
            if s.name in ("http_requests_total", "http_requests_in_flight"):
                values[s.name] = values.get(s.name, 0.0) + s.value
    return values


async def test_multiprocess_sums_workers_and_sweeps_dead_ones(tmp_path: Path) -> None:
    """Two workers' counts add up; a dead worker's in-flight gauge is removed, its counts kept."""
    first = start_worker(tmp_path, 3)
    second = start_worker(tmp_path, 4)
    try:
        assert sweep_dead_workers(tmp_path) == []  # both alive: nothing removed
        assert await scrape_values(tmp_path) == {"http_requests_total": 7.0, "http_requests_in_flight": 2.0}
        stop_worker(first)
        assert not pid_alive(first.pid)
        assert await scrape_values(tmp_path) == {"http_requests_total": 7.0, "http_requests_in_flight": 1.0}
        assert not list(tmp_path.glob(f"gauge_live*_{first.pid}.db"))
        assert list(tmp_path.glob(f"counter_{first.pid}.db"))
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                stop_worker(proc)
    assert sweep_dead_workers(tmp_path) == [second.pid]


def test_sweep_of_a_missing_directory_is_a_no_op(tmp_path: Path) -> None:
    """Sweeping a directory that does not exist removes nothing and does not fail."""
    assert sweep_dead_workers(tmp_path / "absent") == []


def test_env_var_is_read_at_construction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PROMETHEUS_MULTIPROC_DIR set when metrics_app is built selects multiprocess mode."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    app = metrics_app()
    assert str(tmp_path) in repr(app)


async def test_multiprocess_mode_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With prometheus-client's multiprocess values, every metric lands in the directory's files."""
    from prometheus_client import values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    metrics = register_metrics("svc-mp", namespace="mp")
    assert metrics.multiprocess
    metrics.request_started()
    metrics.observe("GET", "/a", 200, 0.02, 3)
    metrics.observe("GET", "/a", 200, 0.5, 4)
    metrics.observe("GET", "/a", 700, 0.5, 4)
    metrics.observe("GET", "/a", 800, 0.5, 4)  # collapses into the same _OTHER series
    assert metrics.series_count == 2
    response = await call_app(metrics_app(multiprocess_dir=tmp_path, gzip=False))
    samples = {
        (s.name, s.labels.get("status"), s.labels.get("le")): s.value
        for f in text_string_to_metric_families(response.body.decode())
        for s in f.samples
    }
    assert samples[("mp_http_requests_total", "200", None)] == 2.0
    assert samples[("mp_http_requests_total", "_OTHER", None)] == 2.0
    assert samples[("mp_http_request_duration_seconds_bucket", "200", "0.025")] == 1.0
    assert samples[("mp_http_response_size_bytes_total", "200", None)] == 7.0
    assert samples[("mp_http_requests_in_flight", None, None)] == 1.0
    metrics.request_finished()
    response = await call_app(metrics_app(multiprocess_dir=tmp_path, gzip=False))
    assert b'mp_http_requests_in_flight{service="svc-mp"} 0.0' in response.body
