"""One exception base: every exception class the kit defines derives from AsgiKitError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import asgi_kit
from asgi_kit import AsgiKitError, StoreUnavailableError

# Modules that need a command-line or benchmarking context, or are test tooling whose
# exceptions are assertions by design.
SKIPPED = ("asgi_kit.bench", "asgi_kit.cli", "asgi_kit.demo.__main__", "asgi_kit.testing")


def kit_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(asgi_kit.__path__, "asgi_kit."):
        if info.name.startswith(SKIPPED):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("asgi_kit."):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_kit_exception_is_an_asgi_kit_error() -> None:
    """Catching AsgiKitError catches anything the kit raises on purpose."""
    classes = kit_exception_classes()
    assert len(classes) > 30
    # Private ones (a leading underscore) are control flow inside one module and never escape it.
    strays = [
        cls.__qualname__
        for cls in classes
        if not issubclass(cls, AsgiKitError) and not cls.__qualname__.startswith("_")
    ]
    assert strays == []


def test_store_outages_share_one_base() -> None:
    """Credential, budget and database outages are all StoreUnavailableError (a 503)."""
    from asgi_kit.auth import CredentialStoreUnavailableError
    from asgi_kit.budget import BudgetStoreUnavailableError
    from asgi_kit.database import DatabaseUnavailableError

    for cls in (CredentialStoreUnavailableError, BudgetStoreUnavailableError, DatabaseUnavailableError):
        assert issubclass(cls, StoreUnavailableError)
    assert BudgetStoreUnavailableError(retry_after=2).retry_after == 2
