"""The kit's stack around a Starlette app: ``uvicorn examples.starlette_app:app``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgi_kit.integrations.starlette import problem_exception_handlers
from examples.kit_stack import kit_stack, print_dev_token


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": request.user.identity})


stack, jwt = kit_stack("starlette-example")
app = stack.wrap(Starlette(routes=[Route("/hello", hello)], exception_handlers=problem_exception_handlers()))
TOKEN = print_dev_token(jwt)
