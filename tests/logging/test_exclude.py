"""The inline exclude_paths shortcut decides exactly as PathFilter does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.paths import PathFilter
from asgi_kit.logging._exclude import make_exclusion
from tests.harness.asgi import make_scope

SEGMENT = st.sampled_from(["health", "static", "api", "a.css", ".", "..", "", "HEALTH", "x;y"])
PATH = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
PATTERN = st.one_of(PATH, PATH.map(lambda p: p.rstrip("/") + "/*"))


@given(st.lists(PATTERN, max_size=4), PATH, st.sampled_from(["", "/api", "/api/"]))
def test_shortcut_matches_pathfilter(patterns: list[str], path: str, root_path: str) -> None:
    """For any patterns, path and root_path, inline set test + rest == PathFilter.matches."""
    scope = make_scope(path, root_path=root_path)
    exclusion = make_exclusion(patterns)
    inline = bool(exclusion.exact) and scope["path"] in exclusion.exact and not scope.get("root_path")
    decided = inline or (exclusion.rest is not None and exclusion.rest(scope))
    assert decided == PathFilter(patterns).matches(scope)


def test_no_patterns_means_no_test() -> None:
    """Without exclude_paths the hot path has nothing to call."""
    exclusion = make_exclusion([])
    assert not exclusion.exact and exclusion.rest is None
