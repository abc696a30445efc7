"""The ASGI types the kit's signatures use, for typing your own apps and middleware.

Starlette-shaped aliases (a scope and a message are mutable mappings), so an app of any
framework fits them without a cast::

    from asgi_kit.types import ASGIApp, Receive, Scope, Send

    async def app(scope: Scope, receive: Receive, send: Send) -> None: ...
"""

from asgi_kit._asgi.types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = ["ASGIApp", "Message", "RawHeaders", "Receive", "Scope", "Send"]
