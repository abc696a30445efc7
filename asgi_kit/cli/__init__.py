"""The ``asgi-kit`` command line: ``bench``, ``demo``, ``migrate``, ``token``, ``api-key``.

Each subcommand lives in its own module exposing ``register(subparsers)``; the module is
imported only when the command line starts, so ``import asgi_kit`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from asgi_kit._version import __version__

COMMAND_MODULES = ("bench", "demo", "migrate", "token", "api_key")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgi-kit", description="asgi-kit: pure-ASGI middleware for Python services"
    )
    parser.add_argument("--version", action="version", version=f"asgi-kit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"asgi_kit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"asgi_kit.cli.{name}":
                continue  # command not shipped in this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, ImportError) as exc:
        print(f"asgi-kit {args.command}: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
