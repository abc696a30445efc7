"""The public surface: exact __all__, and a clear ImportError without the extra."""

from __future__ import annotations

import subprocess
import sys
import types

import asgi_kit.httpclient as httpclient
from asgi_kit.httpclient import errors, openai_errors


def test_all_is_exactly_the_public_names() -> None:
    """__all__ lists every public name the package exports, and nothing else."""
    public = {
        name
        for name, value in vars(httpclient).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "require"
    }
    assert set(httpclient.__all__) == public
    assert len(httpclient.__all__) == len(set(httpclient.__all__))


def test_hierarchies() -> None:
    """Transport errors, timeouts and API errors nest as the docstring trees say."""
    assert issubclass(errors.ConnectError, errors.TransportError)
    assert issubclass(errors.DeadlineExceeded, errors.TimeoutException)
    assert issubclass(errors.TimeoutException, errors.TransportError)
    assert issubclass(openai_errors.APITimeoutError, openai_errors.APIConnectionError)
    assert issubclass(openai_errors.RateLimitError, openai_errors.APIStatusError)
    assert issubclass(openai_errors.IncompleteStreamError, openai_errors.APIError)
    assert openai_errors.status_error_class(503) is openai_errors.InternalServerError


def test_missing_extra_names_the_pip_install() -> None:
    """Without aiohttp, importing the package says which extra to install."""
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "try:\n    import asgi_kit.httpclient\nexcept ImportError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'asgi-kit[client]'" in result.stdout
