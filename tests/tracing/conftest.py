"""Fixtures: a fresh SDK provider per test that keeps finished spans in memory; an OTLP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tracing.otlp_receiver import Receiver, run_receiver


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """A loopback OTLP/HTTP receiver and its URL."""
    with run_receiver() as running:
        yield running
