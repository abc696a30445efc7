"""Exact-match path filter for ``exclude_paths``.

Matching is exact on the decoded path relative to ``root_path``; it is deliberately not a
prefix, glob or case-insensitive match, so ``/health`` never excludes ``/healthz``,
``/health/../admin``, ``//admin``, ``/HEALTH``, ``/health;x=1`` or ``/admin/health``.
Patterns ending in ``/*`` exclude a whole subtree on segment boundaries (``/static/*``
matches ``/static/a.css`` but not ``/staticfiles``), and never a path holding ``.`` or
``..`` segments, which a server might normalise differently from us.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgi_kit._asgi.options import check_strings
from asgi_kit._asgi.types import Scope


class PathFilter:
    """Decide, once per request with a set lookup, whether a path is excluded."""

    __slots__ = ("_exact", "_patterns", "_prefixes")

    def __init__(self, paths: Iterable[str] = (), *, option: str = "exclude_paths") -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        patterns: list[str] = []
        for path in check_strings(option, paths):
            if not path.startswith("/"):
                raise ValueError(f"{option} entries must be absolute paths starting with '/', got {path!r}")
            patterns.append(path)
            if path.endswith("/*"):
                prefixes.append(path[:-1])
            else:
                exact.add(path)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._patterns = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __repr__(self) -> str:
        return f"PathFilter({list(self._patterns)!r})"

    @property
    def exact(self) -> frozenset[str]:
        """The exact (non-subtree) patterns."""
        return self._exact

    def matches_path(self, path: str) -> bool:
        if path in self._exact:
            return True
        return bool(self._prefixes) and self._in_subtree(path)

    def _in_subtree(self, path: str) -> bool:
        for prefix in self._prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                rest = path[len(prefix) :]
                segments = rest.split("/")
                return not ("" in segments or "." in segments or ".." in segments)
        return False

    def matches(self, scope: Scope) -> bool:
        """Whether the request in ``scope`` is excluded. Cheap when no paths are configured."""
        if not self._patterns:
            return False
        if scope.get("root_path"):
            return self.matches_path(route_path(scope))
        # No root_path (the usual case): the path is the route path as it is, so test it here
        # without the two calls through route_path and matches_path (most layers' exclude check).
        path: str = scope.get("path") or ""
        return path in self._exact or (bool(self._prefixes) and self._in_subtree(path))


def route_path(scope: Scope) -> str:
    """The decoded path the app routes on: ``path`` with ``root_path`` removed when present.

    ASGI says ``path`` includes ``root_path``, but older servers and some mounts do not add
    it; strip it only when it is really there, on a segment boundary.
    """
    path: str = scope.get("path") or ""
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


__all__ = ["PathFilter", "route_path"]
