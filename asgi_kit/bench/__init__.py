"""Measure your own stack: the machinery behind ``asgi-kit bench``.

- :mod:`asgi_kit.bench.layers`: your app alone, in your :class:`~asgi_kit.Stack`, and in the
  stack without each layer; each layer's share of the cost;
- :mod:`asgi_kit.bench.driver`: the in-process driver (apps called directly, interleaved
  round-robin, timed on the wall and CPU clocks with GC handled alike for all);
- :mod:`asgi_kit.bench.e2e`: the end-to-end runner (uvicorn subprocesses loaded by ``wrk``, or
  by a bounded built-in asyncio loader);
- :mod:`asgi_kit.bench.report`: a rich table and progress bar, JSON, an optional matplotlib plot.

Nothing here is imported by ``import asgi_kit``; rich, uvicorn and matplotlib come with the
``bench`` extra.
"""
