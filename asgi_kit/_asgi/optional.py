"""Fail clearly when a concern's optional dependency is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` naming the exact ``pip install`` to run."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module!r} is needed for asgi_kit.{extra}; install it with: pip install 'asgi-kit[{extra}]'"
        ) from exc


__all__ = ["require"]
