"""Shared fixtures; the harness lives in :mod:`tests.harness`."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.harness.otel import exporter, provider  # noqa: F401  (fixture re-export)
from tests.harness.postgres import database_url  # noqa: F401  (fixture re-export)

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _unfreeze_heap() -> Iterator[None]:
    """LifespanHooksMiddleware freezes the heap at startup; in the test process that would pin
    every later test's garbage, so each test ends with the collector as it found it."""
    yield
    gc.unfreeze()
