"""The peer comparison: each kit layer, and the kit stack, next to the libraries they replace.

Built on the kit's own benchmark machinery (:mod:`asgi_kit.bench`): the variants
(:mod:`benchmarks.suite.variants`) are timed in process by :mod:`benchmarks.suite.driver`
and served end to end by :mod:`benchmarks.suite.e2e`. Every layer and every peer library is
imported lazily, by the variant that needs it: a variant whose layer or peer is not
installed is skipped with a note, never an error.
"""

from __future__ import annotations

RESULT_SCHEMA = "asgi-kit-bench/1"

__all__ = ["RESULT_SCHEMA"]
