"""``exclude_paths`` at the cost of a set lookup on the hot path.

An excluded request (a health check polled every second) should cost next to nothing. The
common case, an exact path and no ``root_path``, is answered inline by the middleware with
``scope["path"] in exact``; everything else (``/prefix/*`` subtrees, mounts) goes to
:class:`~asgi_kit._asgi.paths.PathFilter`, whose rules the shortcut therefore shares exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import Scope


class Exclusion(NamedTuple):
    """``exact``: paths to test inline when ``root_path`` is empty; ``rest``: the remaining
    test, ``None`` when the inline one is the whole answer for every scope."""

    path_filter: PathFilter
    exact: frozenset[str]
    rest: Callable[[Scope], bool] | None


def make_exclusion(paths: Sequence[str]) -> Exclusion:
    path_filter = PathFilter(paths)  # validates
    if not path_filter:
        return Exclusion(path_filter, frozenset(), None)
    exact = frozenset(path for path in paths if not path.endswith("/*"))
    if len(exact) != len(set(paths)):  # subtrees: the filter decides whatever the inline test said
        return Exclusion(path_filter, exact, path_filter.matches)
    matches = path_filter.matches

    def rooted(scope: Scope) -> bool:
        # Exact paths only: the inline test already answered unless a root_path is involved.
        return bool(scope.get("root_path")) and matches(scope)

    return Exclusion(path_filter, exact, rooted)


__all__ = ["Exclusion", "make_exclusion"]
