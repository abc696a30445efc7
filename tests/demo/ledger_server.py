"""Run a server in its own process for the ledger tests (so it can be killed with SIGKILL).

``python -m tests.demo.ledger_server gateway uvicorn|hypercorn PORT``: the demo gateway, built
from the ``ASGI_KIT_DEMO_*`` environment. ``python -m tests.demo.ledger_server upstream uvicorn
PORT TOKEN_DELAY``: the fake upstream alone.
"""

from __future__ import annotations

import asyncio
import sys


def main(argv: list[str]) -> None:
    kind, server, port = argv[0], argv[1], int(argv[2])
    if kind == "gateway":
        from asgi_kit.demo import DemoConfig, build_gateway

        app = build_gateway(DemoConfig.from_env())
    else:
        from asgi_kit.testing.fake_upstream import FakeOpenAI

        app = FakeOpenAI(token_delay=float(argv[3]))
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
        return
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    config.graceful_timeout = 1.0
    asyncio.run(serve(app, config, mode="asgi"))  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])
