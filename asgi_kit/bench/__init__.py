"""The included overhead benchmark suite behind ``asgi-kit bench``.

Two modes:

- in-process (:mod:`asgi_kit.bench.driver`): the ASGI app is called directly with fresh
  synthetic scopes, every variant of :mod:`asgi_kit.bench.variants` interleaved round-robin,
  and each variant's overhead is its median per-request time minus its bare base's;
- end-to-end (:mod:`asgi_kit.bench.e2e`): uvicorn subprocesses loaded by ``wrk`` (or a bounded
  built-in load generator), reporting requests/s, latency percentiles and peak memory.

:mod:`asgi_kit.bench.report` renders the result (a rich table, JSON, a matplotlib plot).
Every layer and every peer library is imported lazily, by the variant that needs it: a
variant whose layer or peer is not installed is skipped with a note, never an error. Nothing
here is imported by ``import asgi_kit``.
"""

from __future__ import annotations

RESULT_SCHEMA = "asgi-kit-bench/1"

__all__ = ["RESULT_SCHEMA"]
