"""The kit's stack around a FastAPI app: ``uvicorn examples.fastapi_app:app``."""

from __future__ import annotations

from fastapi import FastAPI, Request

from asgi_kit.integrations.fastapi import problem_exception_handlers
from examples.kit_stack import kit_stack, print_dev_token

api = FastAPI(exception_handlers=problem_exception_handlers())


@api.get("/hello")
async def hello(request: Request) -> dict[str, str]:
    return {"hello": request.user.identity}


stack, jwt = kit_stack("fastapi-example")
app = stack.wrap(api)
TOKEN = print_dev_token(jwt)
