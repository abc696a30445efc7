"""``asgi-kit api-key``: make a new API key and the hash to store.

The key is printed once; store only the hash (and key id, pepper version). With
``--pepper-env`` the hash is HMAC-SHA256 under the pepper in that environment variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("api-key", help="generate an API key and its hash", description=__doc__)
    parser.add_argument("--prefix", default="sk", help="key prefix (default: sk)")
    parser.add_argument("--environment", default="live", help="key environment (default: live)")
    parser.add_argument("--pepper-env", default=None, help="variable holding the server-side pepper")
    parser.add_argument("--pepper-version", type=int, default=1, help="version of that pepper (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from asgi_kit.auth import generate_api_key, hash_api_key, parse_api_key

    pepper: bytes | None = None
    version = 0
    if args.pepper_env:
        pepper = os.environ.get(args.pepper_env, "").encode()
        if len(pepper) < 32:
            raise ValueError(f"{args.pepper_env} must hold a pepper of at least 32 bytes")
        if args.pepper_version < 1:
            raise ValueError("--pepper-version must be >= 1")
        version = args.pepper_version
    key = generate_api_key(args.prefix, environment=args.environment)
    result = {
        "api_key": key,
        "key_id": parse_api_key(key).key_id,
        "key_hash": hash_api_key(key, pepper=pepper),
        "pepper_version": version,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(f"{name}: {value}")
    print("the key is shown only once: store key_id, key_hash and pepper_version", file=sys.stderr)
    return 0


__all__ = ["register", "run"]
