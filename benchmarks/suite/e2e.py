"""The peer comparison end to end: bare FastAPI, the kit stack and the peer stack under uvicorn.

The servers, loaders and measurements are :mod:`asgi_kit.bench.e2e`; this module names the
three apps (:mod:`benchmarks.suite.apps` builds them in each server), sends the suite's
request with a reused bearer token, and judges the issue's end-to-end targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from asgi_kit.bench.e2e import GC_MODES, E2EConfig, Progress, ServedApp, run_e2e
from benchmarks.suite._apps import authorized_request, mint_token
from benchmarks.suite.apps import APP_ENV, E2E_APPS

#: The folder ``benchmarks`` is imported from, for the servers' ``PYTHONPATH``.
CHECKOUT: Final = str(Path(__file__).resolve().parents[2])
#: The suite's own defaults: 1 and 2 workers, both GC modes.
SUITE_E2E: Final = E2EConfig(workers=(1, 2), gc_modes=GC_MODES)
QUICK_SUITE_E2E: Final = E2EConfig(
    workers=(1,), duration=1.0, warmup=0.5, repeats=1, connections=8, gc_modes=GC_MODES
)


@dataclass(frozen=True, slots=True)
class SuiteE2E:
    """Which of ``bare``, ``kit`` and ``peer`` to serve, and how."""

    apps: tuple[str, ...] = ("bare", "kit", "peer")
    config: E2EConfig = SUITE_E2E

    def __post_init__(self) -> None:
        unknown = [a for a in self.apps if a not in E2E_APPS]
        if unknown or not self.apps:
            raise ValueError(f"apps must be among {', '.join(E2E_APPS)}, got {self.apps!r}")


def served(app: str) -> ServedApp:
    """The server of ``bare``, ``kit`` or ``peer``."""
    return ServedApp(app, "benchmarks.suite.apps:create_app", {APP_ENV: app}, (CHECKOUT,))


def run_suite_e2e(run: SuiteE2E = SuiteE2E(), progress: Progress | None = None) -> dict[str, Any]:
    """Serve the apps, load them alternately, and add the targets to the e2e document."""
    request = authorized_request(b"Bearer " + mint_token(0).encode())
    document = run_e2e([served(app) for app in run.apps], request, run.config, progress)
    document["targets"] = e2e_targets(document["runs"])
    return document


def _target(
    name: str, description: str, value: float | None, limit: float | None, higher_is_better: bool
) -> dict[str, Any]:
    passed = None
    if value is not None and limit is not None:
        passed = value >= limit if higher_is_better else value <= limit
    return {
        "name": name,
        "description": description,
        "kind": "e2e",
        "measured": value,
        "limit": limit,
        "passed": passed,
        "note": "" if value is not None else "not measured",
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def e2e_targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's end-to-end targets, for every worker count measured.

    They use the ``default`` GC mode's rows (each app as its users build it); a run of the
    ``freeze`` mode alone is judged on its rows, and the description says so.
    """
    modes = {row.get("gc", "default") for row in rows}
    mode = "default" if "default" in modes or not modes else "freeze"
    rows = [row for row in rows if row.get("gc", "default") == mode]
    out: list[dict[str, Any]] = []
    for workers in sorted({row["workers"] for row in rows}):
        by_app = {row["app"]: row for row in rows if row["workers"] == workers}
        bare, kit, peer = by_app.get("bare", {}), by_app.get("kit", {}), by_app.get("peer", {})
        suffix = f" ({workers} worker{'s' if workers > 1 else ''}{', every heap frozen' if mode == 'freeze' else ''})"
        primary = workers == 1
        # (name, description, app, metric, limit on one worker, higher is better)
        ratios = (
            ("rps_kit", "kit stack keeps >= 0.5x bare FastAPI's requests/s", kit, "rps", 0.5, True),
            (
                "rps_peer",
                "peer stack's share of bare FastAPI's requests/s (issue: ~0.1x)",
                peer,
                "rps",
                None,
                True,
            ),
            ("p99_kit", "kit stack p99 latency <= 2x bare FastAPI's", kit, "p99_ms", 2.0, False),
            ("p999_kit", "kit stack p99.9 latency <= 3x bare FastAPI's", kit, "p999_ms", 3.0, False),
        )
        for name, description, app, metric, limit, higher in ratios:
            out.append(
                _target(
                    f"e2e_{name}_w{workers}",
                    description + suffix,
                    _ratio(app.get(metric), bare.get(metric)),
                    limit if primary else None,
                    higher,
                )
            )
        kit_mem = _diff(kit.get("peak_rss_bytes"), bare.get("peak_rss_bytes"))
        peer_mem = _diff(peer.get("peak_rss_bytes"), bare.get("peak_rss_bytes"))
        out.append(
            _target(
                f"e2e_memory_w{workers}",
                "kit stack's peak-memory increase <= 0.75x the peer stack's" + suffix,
                _ratio(kit_mem, peer_mem),
                0.75 if primary else None,
                False,
            )
        )
    return out


def _diff(a: int | None, b: int | None) -> float | None:
    return float(a - b) if a and b else None


__all__ = ["QUICK_SUITE_E2E", "SUITE_E2E", "SuiteE2E", "e2e_targets", "run_suite_e2e", "served"]
