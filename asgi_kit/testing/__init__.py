"""Test your own ASGI middleware the way the kit tests its own.

Raw-ASGI helpers (``make_scope``, ``RecordingSend``, ``StrictReceive``, ``call_app``,
``run_lifespan``) and :class:`MiddlewareContract`, the checks every layer of the kit passes:
lifespan pass-through, websockets, ``exclude_paths``, exceptions before and after the response
started, cancellation, streaming both ways, interleaved concurrent requests. Needs the
``testing`` extra (pytest and pytest-asyncio)::

    from asgi_kit.testing import MiddlewareContract

    class TestMyLayerContract(MiddlewareContract):
        def make(self, app, **options):
            return MyLayer(app, **options)
"""

from asgi_kit.testing.asgi import (
    LifespanProbe,
    ReceiveOverrun,
    RecordingSend,
    StrictReceive,
    call_app,
    make_scope,
    run_lifespan,
)
from asgi_kit.testing.contract import MiddlewareContract

__all__ = [
    "LifespanProbe",
    "MiddlewareContract",
    "ReceiveOverrun",
    "RecordingSend",
    "StrictReceive",
    "call_app",
    "make_scope",
    "run_lifespan",
]
