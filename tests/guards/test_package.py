"""Import hygiene of asgi_kit.guards and asgi_kit.integrations."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import asgi_kit.guards


def test_guards_all_is_exact() -> None:
    """asgi_kit.guards exports exactly its public names."""
    assert sorted(asgi_kit.guards.__all__) == [
        "BodyLimitMiddleware",
        "BodyTooLargeError",
        "SecurityHeadersMiddleware",
        "TimeoutMiddleware",
        "parse_content_length",
    ]
    for name in asgi_kit.guards.__all__:
        assert getattr(asgi_kit.guards, name) is not None


def test_guards_and_integrations_package_import_no_framework() -> None:
    """Importing the guards and the integrations package loads no web framework and no optional dependency."""
    code = """
        import sys
        import asgi_kit.guards, asgi_kit.integrations
        heavy = {"starlette", "fastapi", "litestar", "prometheus_client", "opentelemetry", "jwt", "psycopg"}
        print(",".join(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
