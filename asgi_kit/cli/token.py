"""``asgi-kit token``: print a development JWT (or a whole token pair as JSON).

The signing secret is read from an environment variable (``ASGI_KIT_JWT__SECRET`` by
default) or a file, never from the command line, where it would land in shell history and
``ps`` output. Issuer and audience default to ``ASGI_KIT_JWT__ISSUER``/``__AUDIENCE``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("token", help="print a development JWT", description=__doc__)
    parser.add_argument("--user-id", required=True, help="the sub claim")
    parser.add_argument("--org-id", default=None, help="the org_id claim")
    parser.add_argument("--role", default="org_user", help="the role claim (default: org_user)")
    parser.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    parser.add_argument("--issuer", default=os.environ.get("ASGI_KIT_JWT__ISSUER"), help="iss")
    parser.add_argument("--audience", default=os.environ.get("ASGI_KIT_JWT__AUDIENCE"), help="aud")
    parser.add_argument("--algorithm", default=os.environ.get("ASGI_KIT_JWT__ALGORITHM", "HS256"))
    parser.add_argument(
        "--secret-env", default="ASGI_KIT_JWT__SECRET", help="variable holding the HMAC secret (HS*)"
    )
    parser.add_argument("--secret-file", default=None, help="file holding the HMAC secret (HS*)")
    parser.add_argument(
        "--private-key-file", default=None, help="PEM private key (RS256, ES256, EdDSA, Ed25519)"
    )
    parser.add_argument("--ttl", type=int, default=900, help="access token lifetime in seconds (default 900)")
    parser.add_argument("--pair", action="store_true", help="print the access/refresh pair as JSON")
    parser.set_defaults(handler=run)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read().strip()


def run(args: argparse.Namespace) -> int:
    from asgi_kit.auth import JWTConfig, JWTManager

    if not args.issuer or not args.audience:
        raise ValueError("--issuer and --audience are required (or ASGI_KIT_JWT__ISSUER/__AUDIENCE)")
    options: dict[str, Any] = {}
    if args.algorithm.startswith("HS"):
        secret = _read(args.secret_file) if args.secret_file else os.environ.get(args.secret_env, "").encode()
        if not secret:
            raise ValueError(f"no HMAC secret: set {args.secret_env} or pass --secret-file")
        options["secret"] = secret
    else:
        if not args.private_key_file:
            raise ValueError(f"{args.algorithm} needs --private-key-file")
        options["private_key"] = _read(args.private_key_file)
    config = JWTConfig(
        algorithm=args.algorithm,
        issuer=args.issuer,
        audience=args.audience,
        access_ttl=args.ttl,
        **options,
    )
    pair = JWTManager(config).generate_token_pair(args.user_id, args.org_id, args.role, scopes=args.scope)
    if args.pair:
        print(json.dumps(pair.model_dump(), indent=2))
    else:
        print(pair.access_token)
    print(f"token for {args.user_id!r} ({args.role}), valid {args.ttl}s", file=sys.stderr)
    return 0


__all__ = ["register", "run"]
