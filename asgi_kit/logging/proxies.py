"""Which peers may tell us the client's address through ``X-Forwarded-For``.

Only a reverse proxy we run can be believed: anyone else can put any address in the header.
The header is read right to left, skipping our own proxies, and the first address that is
not one of them is the client (the algorithm of uvicorn's ``ProxyHeadersMiddleware`` and of
nginx's ``real_ip_recursive``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from asgi_kit._asgi.options import check_strings

# At most this many trailing bytes of X-Forwarded-For are read: the client is found from the
# right, and a longer header is an attack on our CPU, not a real proxy chain.
MAX_FORWARDED_BYTES: Final = 2048

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """A parsed ``trusted_proxies`` option: addresses, networks, or ``"*"`` for every peer."""

    __slots__ = ("_addresses", "_any", "_networks", "_source")

    def __init__(self, entries: Sequence[str] = ()) -> None:
        source = check_strings("trusted_proxies", entries)
        addresses: set[str] = set()
        networks: list[_Network] = []
        any_peer = False
        for raw in source:
            entry = raw.strip()
            if entry == "*":
                any_peer = True
            elif "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"trusted_proxies: {entry!r} is not an IP network") from None
            else:
                try:
                    addresses.add(str(ipaddress.ip_address(entry)))
                except ValueError:
                    raise ValueError(f"trusted_proxies: {entry!r} is not an IP address") from None
        self._addresses = frozenset(addresses)
        self._networks = tuple(networks)
        self._any = any_peer
        self._source = source

    def __bool__(self) -> bool:
        return self._any or bool(self._addresses) or bool(self._networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({list(self._source)!r})"

    def is_trusted(self, host: str) -> bool:
        if self._any or host in self._addresses:
            return True
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def client(self, peer: str | None, forwarded_for: bytes | None) -> str | None:
        """The client address: from ``X-Forwarded-For`` when ``peer`` is a trusted proxy, else ``peer``."""
        if peer is None or forwarded_for is None or not self.is_trusted(peer):
            return peer
        hops = forwarded_for[-MAX_FORWARDED_BYTES:].decode("latin-1").split(",")
        candidate = peer
        for hop in reversed(hops):
            hop = hop.strip()
            if not hop:
                continue
            candidate = hop
            if not self.is_trusted(hop):
                return hop
        # Every hop is one of ours: the leftmost is the best we know.
        return candidate


__all__ = ["MAX_FORWARDED_BYTES", "TrustedProxies"]
