"""asgi-kit: framework-agnostic, pure-ASGI middleware for Python services.

``import asgi_kit`` is cheap: it imports no optional dependency. Each concern lives in its
own subpackage (``asgi_kit.auth``, ``asgi_kit.metrics``, ...) behind an extra.
"""

from asgi_kit._asgi.exceptions import AsgiKitError, StoreUnavailableError
from asgi_kit._asgi.lifespan import Hook as LifespanHook
from asgi_kit._asgi.lifespan import LifespanHooksMiddleware, answer_lifespan
from asgi_kit._asgi.routes import ROUTE_SCOPE_KEY
from asgi_kit._version import __version__
from asgi_kit.stack import Middleware, Stack

__all__ = [
    "ROUTE_SCOPE_KEY",
    "AsgiKitError",
    "LifespanHook",
    "LifespanHooksMiddleware",
    "Middleware",
    "Stack",
    "StoreUnavailableError",
    "__version__",
    "answer_lifespan",
]
