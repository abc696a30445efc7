"""The kit's stack around a Litestar app: ``uvicorn examples.litestar_app:app``.

Wrap the whole app: Litestar's own ``middleware=`` runs per route and never sees 404/405.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get

from asgi_kit.integrations.litestar import problem_exception_handlers
from examples.kit_stack import kit_stack, print_dev_token


@get("/hello", sync_to_thread=False)
def hello(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"hello": request.user.identity}


stack, jwt = kit_stack("litestar-example")
app = stack.wrap(Litestar(route_handlers=[hello], exception_handlers=problem_exception_handlers()))
TOKEN = print_dev_token(jwt)
