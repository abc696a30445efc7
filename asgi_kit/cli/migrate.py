"""``asgi-kit migrate``: apply the kit's schema (or your yoyo migrations) to a PostgreSQL database.

The URL comes from ``--database-url`` or the ``ASGI_KIT_DATABASE__URL`` environment variable
(the same variable ``DatabaseSettings.url`` reads); it is never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

ENV_VAR = "ASGI_KIT_DATABASE__URL"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply pending yoyo migrations (the kit's schema by default). Safe to run from several "
        "processes at once.",
    )
    parser.add_argument("--database-url", help=f"postgresql:// URL (default: ${ENV_VAR})")
    parser.add_argument("--migrations-path", help="directory of yoyo migrations (default: the kit's schema)")
    parser.add_argument(
        "--lock-timeout", type=float, default=60.0, help="seconds to wait for a concurrent run (default: 60)"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list pending migrations, apply nothing")
    action.add_argument(
        "--break-lock", action="store_true", help="remove a stale migration lock left by a crashed run"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    url = args.database_url or os.environ.get(ENV_VAR)
    if not url:
        print(f"asgi-kit migrate: error: pass --database-url or set {ENV_VAR}", file=sys.stderr)
        return 2
    from asgi_kit.database import (
        DatabaseError,
        break_migration_lock,
        pending_migrations,
        run_migrations,
    )

    try:
        if args.break_lock:
            break_migration_lock(url)
            print("migration lock removed")
            return 0
        if args.list:
            pending = pending_migrations(url, args.migrations_path)
            for migration_id in pending:
                print(f"pending: {migration_id}")
            if not pending:
                print("no pending migrations")
            return 0
        applied = run_migrations(url, args.migrations_path, lock_timeout=args.lock_timeout)
    except DatabaseError as exc:
        print(f"asgi-kit migrate: error: {exc}", file=sys.stderr)
        return 1
    for migration_id in applied:
        print(f"applied: {migration_id}")
    if not applied:
        print("database is up to date")
    return 0


__all__ = ["ENV_VAR", "handle", "register"]
