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


@pytest.mark.parametrize("missing", ["jwt", "cryptography"])
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


def test_aiohttp_is_imported_only_for_a_jwks() -> None:
    """asgi_kit.auth works without aiohttp; building a JWKSKeySet then names the pip install."""
    code = (
        "import sys; sys.modules['aiohttp'] = None; import asgi_kit.auth as auth; "
        "assert 'aiohttp' not in [m for m in sys.modules if sys.modules[m] is not None]; "
        "auth.JWKSKeySet('https://issuer.example/jwks.json')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "pip install 'asgi-kit[jwt]'" in result.stderr


def test_an_hmac_service_imports_no_pyjwt_cryptography_or_aiohttp() -> None:
    """An HS256 service never pays their memory (about 20 MiB): sign, verify and authenticate without them."""
    code = (
        "import asyncio, sys\n"
        "from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager\n"
        "manager = JWTManager(JWTConfig(secret='s' * 32, issuer='i', audience='a'))\n"
        "token = manager.generate_token_pair('u', 'o', 'r').access_token\n"
        "assert asyncio.run(manager.validate_jwt(token)).sub == 'u'\n"
        "AuthMiddleware(lambda *a: None, jwt=manager)\n"
        "loaded = {'jwt', 'cryptography', 'aiohttp'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
