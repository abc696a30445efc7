"""Test your own ASGI middleware the way the kit tests its own.

Raw-ASGI helpers (``make_scope``, ``RecordingSend``, ``StrictReceive``, ``call_app``,
``run_lifespan``); :class:`FakeOpenAI`, an OpenAI-compatible upstream to point clients and
gateways at; and :class:`MiddlewareContract`, the checks every layer of the kit passes:
lifespan pass-through, websockets, ``exclude_paths``, exceptions before and after the response
started, cancellation, streaming both ways, interleaved concurrent requests. The contract needs
the ``testing`` extra (pytest and pytest-asyncio); the rest needs nothing::

    from asgi_kit.testing import MiddlewareContract

    class TestMyLayerContract(MiddlewareContract):
        def make(self, app, **options):
            return MyLayer(app, **options)
"""

from typing import TYPE_CHECKING

from asgi_kit.testing.asgi import (
    LifespanProbe,
    ReceiveOverrun,
    RecordingSend,
    StrictReceive,
    call_app,
    make_scope,
    run_lifespan,
)
from asgi_kit.testing.fake_upstream import FakeOpenAI

if TYPE_CHECKING:
    from asgi_kit.testing.contract import MiddlewareContract


def __getattr__(name: str) -> object:
    # The contract is a pytest test class: imported on first use, so that the fake upstream
    # and the ASGI helpers (which the demo gateway serves) need no pytest.
    if name == "MiddlewareContract":
        from asgi_kit.testing.contract import MiddlewareContract

        return MiddlewareContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FakeOpenAI",
    "LifespanProbe",
    "MiddlewareContract",
    "ReceiveOverrun",
    "RecordingSend",
    "StrictReceive",
    "call_app",
    "make_scope",
    "run_lifespan",
]
