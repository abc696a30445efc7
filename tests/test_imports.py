"""Import hygiene: a light top-level import, clear errors for missing extras, exact __all__."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import asgi_kit

OPTIONAL = [
    "jwt",
    "psycopg",
    "psycopg_pool",
    "yoyo",
    "pythonjsonlogger",
    "prometheus_client",
    "opentelemetry",
    "aiohttp",
    "backoff",
    "pydantic_settings",
    "starlette",
    "fastapi",
    "litestar",
]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_import_asgi_kit_loads_no_optional_dependency() -> None:
    """`import asgi_kit` pulls in none of the optional dependencies."""
    result = run_python(f"""
        import sys
        import asgi_kit, asgi_kit.errors, asgi_kit.models
        loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({OPTIONAL!r}))
        print(','.join(loaded))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("concern", "blocked", "extra"),
    [
        ("config", "pydantic_settings", "config"),
        ("auth", "jwt", "jwt"),
        ("logging", "pythonjsonlogger", "logging"),
        ("metrics", "prometheus_client", "metrics"),
        ("tracing", "opentelemetry", "tracing"),
        ("database", "psycopg", "postgres"),
        ("httpclient", "aiohttp", "client"),
    ],
)
def test_missing_extra_names_pip_install(concern: str, blocked: str, extra: str) -> None:
    """Importing a concern without its dependency says which pip install to run."""
    result = run_python(f"""
        import sys
        sys.modules[{blocked!r}] = None  # behaves as not installed
        try:
            import asgi_kit.{concern}
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
    """)
    if "No module named 'asgi_kit." + concern in result.stdout + result.stderr:
        pytest.skip(f"asgi_kit.{concern} is not part of this build yet")
    assert f"pip install 'asgi-kit[{extra}]'" in result.stdout, result.stdout + result.stderr


def test_top_level_all_is_exact() -> None:
    """The top-level package exports exactly the public names of the contract."""
    from asgi_kit import errors, models

    assert sorted(asgi_kit.__all__) == [
        "AsgiKitError",
        "LifespanHook",
        "LifespanHooksMiddleware",
        "Middleware",
        "ROUTE_SCOPE_KEY",
        "Stack",
        "StoreUnavailableError",
        "__version__",
        "answer_lifespan",
    ]
    for module in (errors, models):
        assert all(hasattr(module, name) for name in module.__all__)


def test_demo_and_examples_use_public_imports_only() -> None:
    """The demo gateway and the examples are code to copy: they import nothing private."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    private = []
    for path in [
        *sorted((root / "asgi_kit" / "demo").glob("*.py")),
        *sorted((root / "examples").glob("*.py")),
    ]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            private += [
                f"{path.name}: {name}"
                for name in names
                if name.startswith("asgi_kit") and any(part.startswith("_") for part in name.split("."))
            ]
    assert private == []
