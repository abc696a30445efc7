"""``asgi-kit bench``: your app, your stack, and each layer's share, in process and end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asgi_kit.bench.layers import Lifespan, configurations, layer_names
from asgi_kit.bench.request import BenchRequest
from asgi_kit.cli import main
from examples import kit_stack
from tests.bench.layered_app import app as layered_app
from tests.bench.layered_app import stack as layered_stack

EXAMPLE = ["bench", "--app", "examples.kit_stack:app", "--stack", "examples.kit_stack:stack"]
FAST = ["--quick", "--rounds", "2", "--batch", "5"]
EXAMPLE_LAYERS = [
    "RequestIDMiddleware",
    "LoggingMiddleware",
    "MetricsMiddleware",
    "ProblemDetailsMiddleware",
    "SecurityHeadersMiddleware",
    "AuthMiddleware",
]


def _token() -> str:
    return kit_stack.jwt.generate_token_pair("dev-user", "dev-org", "org_admin").access_token


def test_the_example_prints_each_layers_share(capsys: pytest.CaptureFixture[str]) -> None:
    """Every layer of the example's stack is named with its µs and share; the whole stack and the app too."""
    header = f"Authorization: Bearer {_token()}"
    assert main([*EXAMPLE, "--quick", "--header", header]) == 0
    printed = capsys.readouterr().out
    for layer in EXAMPLE_LAYERS:
        (line,) = [line for line in printed.splitlines() if f" {layer} " in line]
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        assert cells[0] == layer
        float(cells[1])  # µs per request
        assert cells[3].endswith("%")
    assert "the whole stack" in printed and "the app alone" in printed and "100%" in printed


def test_the_command_discards_what_the_app_writes(tmp_path: Path) -> None:
    """Run as a command from the checkout: the table on stdout, the example's access log lines nowhere."""
    command = [str(Path(sys.executable).with_name("asgi-kit")), *EXAMPLE, *FAST]
    done = subprocess.run(
        [*command, "--header", f"Authorization: Bearer {_token()}"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "AuthMiddleware" in done.stdout and '"message":"request"' not in done.stdout + done.stderr


def test_the_json_document_holds_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    """--json -: the app, the stack and each layer left out, measured on the same request; shares per layer."""
    header = f"Authorization: Bearer {_token()}"
    assert main([*EXAMPLE, *FAST, "--header", header, "--json", "-", "--clock", "cpu"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["schema"] == "asgi-kit-bench-layers/1" and document["problems"] == []
    assert document["layers_in_order"] == EXAMPLE_LAYERS
    names = [row["name"] for row in document["configurations"]]
    assert names == ["app", "stack", *(f"without {layer}" for layer in EXAMPLE_LAYERS)]
    assert all(row["status"] == "ok" and row["n"] == 2 for row in document["configurations"])
    assert document["request"] == {
        "method": "GET",
        "target": "/",
        "headers": ["authorization"],
        "body_bytes": 0,
    }
    assert [share["layer"] for share in document["layers"]] == EXAMPLE_LAYERS
    assert all(isinstance(share["share_ns"], float) for share in document["layers"])
    assert document["config"]["clock"] == "cpu"
    assert _token()[:20] not in captured.out  # header values (credentials) are not kept
    assert "AuthMiddleware" in captured.err  # the table went to stderr


def test_a_rejecting_layer_is_named_and_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Without credentials the stack answers 401: the run says AuthMiddleware rejects it and exits 1."""
    assert main([*EXAMPLE, *FAST]) == 1
    printed = " ".join(capsys.readouterr().out.split())
    assert "the stack answers 401 to GET / (expected 200): AuthMiddleware rejects it" in printed
    assert "answered 401" in printed and "--expect-status 401" in printed


def test_expect_status_times_the_rejection_on_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    """--expect-status 401: the stack and the layers' shares are measured; what lets the request through is not."""
    assert main([*EXAMPLE, *FAST, "--expect-status", "401", "--json", "-"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    rows = {row["name"]: row for row in document["configurations"]}
    assert rows["stack"]["status"] == "ok" and rows["without LoggingMiddleware"]["status"] == "ok"
    assert rows["app"]["status"] == "error" and rows["app"]["answered"] == 200
    assert rows["without AuthMiddleware"]["answered"] == 200
    shares = {share["layer"]: share for share in document["layers"]}
    assert (
        isinstance(shares["LoggingMiddleware"]["share_ns"], float)
        and shares["LoggingMiddleware"]["share_pct"] is None
    )
    assert "the app alone answers 200 to GET /, not 401" in " ".join(captured.err.split())


def test_a_request_the_app_does_not_serve_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """The app alone failing the request says to pick another one."""
    assert main([*EXAMPLE, *FAST, "--request", "GET /missing"]) == 1
    assert "Pick a request it serves" in " ".join(capsys.readouterr().out.split())


def test_the_app_alone_without_a_stack(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    """Without --stack the app alone is timed, with a hint; --plot writes a PNG."""
    png = tmp_path / "app.png"
    assert main(["bench", "--app", "tests.bench.layered_app:app", *FAST, "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "the app alone" in printed and "--stack" in printed
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--app", "examples.kit_stack:stack"], "must name an ASGI app"),
        (
            ["--app", "examples.kit_stack:app", "--stack", "examples.kit_stack:app"],
            "must name an asgi_kit.Stack",
        ),
        (["--app", "tests.bench.layered_app:app", "--stack", "tests.bench.layered_app:empty"], "is empty"),
        (["--app", "examples.kit_stack:nothing"], "has no attribute"),
        (["--app", "examples.kit_stack"], "module:attribute"),
        (["--app", "examples.kit_stack:app", "--request", "GET"], "METHOD /path"),
        (["--app", "examples.kit_stack:app", "--header", "no colon"], "Name: value"),
    ],
)
def test_usage_errors_name_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong reference, an empty stack or a malformed request exits 2 with the reason."""
    assert main(["bench", *argv, *FAST]) == 2
    assert message in capsys.readouterr().err


def test_a_failed_lifespan_startup_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """An app whose startup fails is not timed; the reason is printed."""
    argv = ["bench", "--app", "tests.bench.layered_app:failing_startup", *FAST]
    assert main(argv) == 1
    assert "lifespan startup failed: no database" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_end_to_end_under_uvicorn(capsys: pytest.CaptureFixture[str]) -> None:
    """--e2e serves the app, the stack and the stack without each layer; a POST with a body gets 200s."""
    argv = [
        "bench",
        "--app",
        "tests.bench.layered_app:app",
        "--stack",
        "tests.bench.layered_app:stack",
        *FAST,
        "--request",
        "POST /v1/items?x=1",
        "--header",
        "Content-Type: application/json",
        "--body",
        '{"name": "a"}',
        "--e2e",
        "--e2e-duration",
        "0.3",
        "--json",
        "-",
    ]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    runs = {row["app"]: row for row in document["e2e"]["runs"]}
    assert set(runs) == {"app", "stack", "without RequestIDMiddleware", "without SecurityHeadersMiddleware"}
    for row in runs.values():
        assert row["rps"] > 0 and row["errors"] == 0
    assert all(set(share["e2e"]) == {"rps_delta", "p99_delta_ms"} for share in document["layers"])


def test_request_parsing_and_scopes() -> None:
    """'POST /path?q' with headers and a body: a fresh uvicorn-like scope and the bytes a client sends."""
    request = BenchRequest.parse("post /v1/x?y=1", ["Authorization: Bearer t", "Host: api.test"], '{"a": 1}')
    scope, again = request.scope(), request.scope()
    assert (
        scope is not again
        and scope["headers"] is not again["headers"]
        and scope["state"] is not again["state"]
    )
    assert scope["method"] == "POST" and scope["path"] == "/v1/x" and scope["query_string"] == b"y=1"
    assert scope["headers"] == [
        (b"host", b"api.test"),
        (b"authorization", b"Bearer t"),
        (b"content-length", b"8"),
    ]
    raw = request.http_bytes(8123)
    assert raw.startswith(b"POST /v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n")
    assert raw.endswith(b'\r\n\r\n{"a": 1}')
    assert str(request) == "POST /v1/x?y=1"
    with pytest.raises(ValueError, match="host"):
        BenchRequest(headers=((b"host", b"x"),))


def test_configurations_leave_one_layer_out_each() -> None:
    """app, stack, then the stack without each layer; a class used twice is numbered."""
    names = [c.name for c in configurations(layered_stack)]
    assert names == ["app", "stack", "without RequestIDMiddleware", "without SecurityHeadersMiddleware"]
    without_first = configurations(layered_stack)[2].build(layered_app, layered_stack)
    assert type(without_first).__name__ == "SecurityHeadersMiddleware"
    assert layer_names(layered_stack + layered_stack)[2:] == [
        "RequestIDMiddleware #2",
        "SecurityHeadersMiddleware #2",
    ]


def test_lifespan_runs_startup_and_shutdown_or_none() -> None:
    """An app speaking lifespan is started and stopped; one that raises at once is served without one."""

    async def no_lifespan(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("lifespan not supported")

    async def run() -> None:
        supported = Lifespan(layered_app)
        await supported.start()
        await supported.stop()
        unsupported = Lifespan(no_lifespan)
        await unsupported.start()
        await unsupported.stop()
        assert isinstance(unsupported.error, RuntimeError)

    asyncio.run(run())
