"""Shared fixtures; the harness lives in :mod:`tests.harness`."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.harness.postgres import database_url  # noqa: F401  (fixture re-export)

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
