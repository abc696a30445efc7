"""The demo's usage ledger: its sink, spool directory, metrics, readiness and prompt estimate.

Every upstream call of the gateway runs inside ``ledger.meter(...)`` (see
:mod:`asgi_kit.budget.meter`); nothing else records usage. In-memory mode feeds the
:class:`~asgi_kit.budget.InMemoryBudgetStore` through a :class:`~asgi_kit.budget.BudgetStoreSink`;
with a database, :class:`~asgi_kit.database.PostgresUsageSink` writes one statement per batch.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from asgi_kit.budget import UsageLedger
from asgi_kit.demo.config import DemoConfig
from asgi_kit.health import HealthStatus


def spool_directory(config: DemoConfig) -> Path:
    """``config.spool_dir``, or a directory under the system temp dir keyed by the database, so
    two demos on different databases never replay each other's records."""
    if config.spool_dir:
        return Path(config.spool_dir)
    key = hashlib.sha256((config.database_url or "in-memory").encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "asgi-kit-demo-spool" / key


def estimate_prompt_tokens(messages: Sequence[Any]) -> int:
    """Words in the messages' text: the unit the bundled fake upstream counts in.

    Used only when the upstream never reports usage (a stream that broke, or one cut after a
    disconnect); a deployment on a real model plugs its tokenizer in here.
    """
    words = 0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, Mapping) else None
                if isinstance(text, str):
                    words += len(text.split())
    return words


class LedgerCollector(Collector):
    """The ledger's backlog and counters, read at scrape time (single-process ``/metrics``)."""

    def __init__(self, ledger: UsageLedger, prefix: str = "usage_ledger") -> None:
        self._ledger = ledger
        self._prefix = prefix

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._ledger.stats()
        p = self._prefix
        backlog = GaugeMetricFamily(
            f"{p}_backlog_records", "Settled records not yet in the sink", labels=["where"]
        )
        backlog.add_metric(["memory"], stats.pending)
        backlog.add_metric(["spool"], stats.spooled)
        yield backlog
        yield GaugeMetricFamily(f"{p}_spool_bytes", "Bytes in the usage spool file", value=stats.spool_bytes)
        yield GaugeMetricFamily(
            f"{p}_draining_streams", "Streams read on after their client left", value=stats.draining
        )
        for name, value, doc in (
            ("records", stats.records, "Settled calls handed to the ledger"),
            ("written_records", stats.written, "Records the sink acknowledged"),
            ("batches", stats.batches, "Sink calls that succeeded"),
            ("sink_failures", stats.sink_failures, "Sink calls that failed or timed out"),
            ("spool_appends", stats.spool_appends, "Appends (one fsync each) to the spool"),
            ("spool_full", stats.spool_full, "Appends refused because the spool was full"),
            ("dropped_records", stats.dropped, "Records lost: backlog full while the spool was full"),
            ("drains", stats.drains, "Streams read on to their usage after their client left"),
            ("drain_timeouts", stats.drain_timeouts, "Drains cut at drain_timeout"),
            ("drains_refused", stats.drains_refused, "Streams not drained: max_drains reached"),
        ):
            yield CounterMetricFamily(f"{p}_{name}", doc, value=value)


def ledger_readiness(ledger: UsageLedger) -> Any:
    """A ``health_app`` check: fails while settled usage cannot be made durable."""

    async def check() -> HealthStatus:
        health = ledger.health()
        return HealthStatus.ok() if health.ready else HealthStatus.failed(health.detail or "not ready")

    return check


__all__ = ["LedgerCollector", "estimate_prompt_tokens", "ledger_readiness", "spool_directory"]
