"""``asgi-kit bench``: what your stack costs over your app, and each layer's share.

    asgi-kit bench --app module:app [--stack module:stack] [--request 'GET /path'] [--header 'Name: value']
                   [--body TEXT] [--expect-status N] [--quick] [--e2e] [--json FILE|-] [--plot FILE]

``--app`` names the bare ASGI app, ``--stack`` the :class:`asgi_kit.Stack` to wrap around it
(without it, the app alone is timed). Modules are imported from ``--app-dir`` (the current
folder by default), as uvicorn does. Exit status: 0; 1 when a configuration did not answer
the expected status or failed to start (the output says which, and which layer rejects the
request); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from asgi_kit.bench.arguments import add_run_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure what your stack costs over your app, and each layer's share",
        description="Time your app alone, in your stack, and in the stack without each layer: "
        "in process, and under uvicorn with --e2e.",
    )
    parser.add_argument("--app", required=True, metavar="MODULE:APP", help="the bare ASGI app")
    parser.add_argument(
        "--stack", metavar="MODULE:STACK", help="the asgi_kit.Stack around it (each layer's share)"
    )
    parser.add_argument(
        "--app-dir", default=".", metavar="DIR", help="folder the modules are imported from (default: .)"
    )
    parser.add_argument(
        "--request", default="GET /", metavar="'METHOD /path'", help="the request sent (default: 'GET /')"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="a header every request carries (repeatable)",
    )
    parser.add_argument("--body", default="", metavar="TEXT", help="the request body")
    parser.add_argument(
        "--expect-status",
        type=int,
        default=200,
        metavar="N",
        help="the status every answer must have (default 200)",
    )
    add_run_options(parser, unit="configuration", e2e_seconds="5, quick 1")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from asgi_kit.bench.driver import QUICK, BenchConfig
    from asgi_kit.bench.e2e import QUICK_E2E, E2EConfig
    from asgi_kit.bench.layers import output_discarded, plot, render, run_layers
    from asgi_kit.bench.report import make_console, progress_bar, write_json
    from asgi_kit.bench.request import BenchRequest

    request = BenchRequest.parse(args.request, args.header, args.body)
    overrides = {k: v for k, v in (("rounds", args.rounds), ("batch", args.batch)) if v is not None}
    config = replace(QUICK if args.quick else BenchConfig(), clock=args.clock, **overrides)
    e2e = None
    if args.e2e:
        e2e = QUICK_E2E if args.quick else E2EConfig(duration=5.0)
        e2e_overrides = {
            k: v for k, v in (("duration", args.e2e_duration), ("repeats", args.e2e_repeats)) if v is not None
        }
        e2e = replace(e2e, **e2e_overrides)
    app_dir = os.path.abspath(args.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    console = make_console(stderr=args.json == "-")
    with progress_bar(console, "measuring") as progress, output_discarded(console):
        document = run_layers(
            args.app,
            args.stack,
            request,
            config,
            expect_status=args.expect_status,
            e2e=e2e,
            app_dir=app_dir,
            progress=progress,
        )
    render(document, console)
    if args.json:
        write_json(document, args.json)
    if args.plot:
        plot(document, args.plot)
        console.print(f"plot written to {args.plot}")
    return 1 if document["problems"] else 0


__all__ = ["register", "run"]
