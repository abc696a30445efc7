"""The runnable example in examples/auth_example.py does what its docstring says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from asgi_kit.testing import call_app, make_scope


async def test_example_answers_as_documented() -> None:
    """401 without credentials, 200 with the token or key, 403 on the admin route."""
    path = Path(__file__).parents[2] / "examples" / "auth_example.py"
    spec = importlib.util.spec_from_file_location("auth_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app, demo = module.build_app()
    token = ("authorization", f"Bearer {demo['TOKEN']}")
    assert (await call_app(app, make_scope("/me"))).status == 401
    assert (await call_app(app, make_scope("/me", headers=[token]))).json()["user"] == "alice"
    assert (await call_app(app, make_scope("/me", headers=[("x-api-key", demo["KEY"])]))).status == 200
    assert (await call_app(app, make_scope("/admin/orgs", headers=[token]))).status == 403
