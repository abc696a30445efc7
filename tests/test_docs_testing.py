"""docs/testing.md's example (a user's own middleware checked with MiddlewareContract) runs as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[1] / "docs" / "testing.md"


def test_the_documented_contract_example_passes_under_pytest(tmp_path: Path) -> None:
    """The example module, run by pytest on its own, collects the contract's checks and passes them all."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = next(block for block in blocks if "class TestServerTimingContract(MiddlewareContract)" in block)
    (tmp_path / "test_user_layer.py").write_text(example, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cov", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"(\d+) passed", result.stdout)
    assert summary is not None and int(summary.group(1)) >= 10, result.stdout
    assert "failed" not in result.stdout
