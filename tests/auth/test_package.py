"""The package surface: public names, and a clear error when the extra is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

import asgi_kit.auth
import asgi_kit.rbac


def test_public_names_are_exactly_all() -> None:
    """__all__ lists exactly the public names, and every one of them exists."""
    for module in (asgi_kit.auth, asgi_kit.rbac):
        public = {n for n in vars(module) if not n.startswith("_")} - {"annotations", "require"}
        public -= {n for n in public if type(getattr(module, n)).__name__ == "module"}
        assert set(module.__all__) == public


@pytest.mark.parametrize("missing", ["jwt", "cryptography", "aiohttp"])
def test_missing_extra_names_the_pip_install(missing: str) -> None:
    """Importing asgi_kit.auth without its extra raises ImportError naming pip install 'asgi-kit[jwt]'."""
    code = f"import sys; sys.modules[{missing!r}] = None; import asgi_kit.auth"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "pip install 'asgi-kit[jwt]'" in result.stderr


def test_rbac_and_stores_need_no_optional_dependency() -> None:
    """asgi_kit.rbac imports without PyJWT; asgi_kit.auth.stores itself imports nothing optional."""
    code = (
        "import sys; sys.modules['jwt'] = None; sys.modules['aiohttp'] = None; import asgi_kit.rbac; "
        "import ast, pathlib; tree = ast.parse(pathlib.Path('asgi_kit/auth/stores.py').read_text()); "
        "names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | "
        "{n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}; "
        "assert not names & {'jwt', 'aiohttp', 'cryptography'}, names; "
        "assert 'asgi_kit.auth' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
