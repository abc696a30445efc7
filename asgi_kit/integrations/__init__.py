"""Thin per-framework adapters, so framework errors render as the kit's problem+json.

One module per framework, each importing its framework only when imported itself (and failing
with the ``pip install`` to run when it is missing); importing this package imports none:

- :mod:`asgi_kit.integrations.starlette`
- :mod:`asgi_kit.integrations.fastapi`
- :mod:`asgi_kit.integrations.litestar`

Each exposes ``problem_exception_handlers()`` for the framework's ``exception_handlers=``.
Frameworks answer their own 404, 405, validation errors and 500s inside the app, before any
outer ASGI layer sees an exception; these handlers make those answers the same RFC 9457
problems, with the request id, that the kit's own layers produce.

Labels before routing: a request answered before the router ran (a 401, a 429) is labelled in
metrics, spans and logs with the template its router would have matched. The Starlette/FastAPI
and Litestar routers are known already (their adapters are imported when such an app is met);
:func:`register_route_finder` teaches the layers another framework's router.
"""

from asgi_kit._asgi.routes import RouteFinder, register_route_finder, unregister_route_finder

__all__ = ["RouteFinder", "register_route_finder", "unregister_route_finder"]
