"""What the wheel holds: the generic bench machinery and ``asgi_kit.testing``, no peer comparison."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Imports of the libraries the peer comparison (benchmarks/) measures the kit against.
PEER_IMPORT = re.compile(
    r"^\s*(?:from|import)\s+(asgi_correlation_id|starlette_exporter|prometheus_fastapi_instrumentator"
    r"|opentelemetry\.instrumentation|jwt)\b",
    re.MULTILINE,
)


@pytest.mark.slow
def test_the_wheel_holds_no_peer_comparison(tmp_path: Path) -> None:
    """No peers/variants module and no peer import in the wheel; the bench machinery and asgi_kit.testing are in it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("asgi_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        sources = {name: archive.read(name).decode() for name in archive.namelist() if name.endswith(".py")}
    assert not [name for name in sources if re.search(r"/(peers|variants)\.py$", name)]
    assert not [name for name in sources if name.startswith("benchmarks/")]
    bench = {
        name: text for name, text in sources.items() if name.startswith(("asgi_kit/bench/", "asgi_kit/cli/"))
    }
    assert {"asgi_kit/bench/driver.py", "asgi_kit/bench/e2e.py", "asgi_kit/bench/layers.py"} <= set(bench)
    assert {name: PEER_IMPORT.findall(text) for name, text in bench.items() if PEER_IMPORT.search(text)} == {}
    assert "asgi_kit/testing/__init__.py" in sources
