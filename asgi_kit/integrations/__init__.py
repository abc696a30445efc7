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
"""

__all__: list[str] = []
