"""PathFilter: exact matching for exclude_paths."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from asgi_kit._asgi.paths import PathFilter, route_path
from asgi_kit.testing import make_scope


@pytest.mark.parametrize(
    "path",
    [
        "/health/../admin",
        "//admin",
        "/healthz",
        "/HEALTH",
        "/health;x=1",
        "/admin/health",
        "/health/",
        "/heal",
        "",
    ],
)
def test_health_does_not_exclude_lookalikes(path: str) -> None:
    """`/health` excludes exactly `/health` and none of the paths an attacker could craft."""
    assert not PathFilter(["/health"]).matches(make_scope(path))


def test_exact_match_and_root_path() -> None:
    """The path is compared after removing root_path, on a segment boundary only."""
    f = PathFilter(["/health"])
    assert f.matches(make_scope("/health"))
    assert f.matches(make_scope("/health", root_path="/api"))
    assert not f.matches({"type": "http", "path": "/apihealth", "root_path": "/api"})
    assert route_path({"path": "/api", "root_path": "/api"}) == "/"
    assert route_path({"path": "/other", "root_path": "/api"}) == "/other"


def test_subtree_patterns_respect_segments() -> None:
    """`/static/*` matches below /static but not /staticfiles, dot segments or empty segments."""
    f = PathFilter(["/static/*"])
    assert f.matches_path("/static/a.css")
    assert f.matches_path("/static/css/a.css")
    assert not f.matches_path("/static/")
    assert not f.matches_path("/staticfiles")
    assert not f.matches_path("/static/../admin")
    assert not f.matches_path("/static//admin")
    assert not f.matches_path("/static/./x")


def test_empty_filter_is_falsy_and_cheap() -> None:
    """No patterns: the filter is falsy and matches nothing."""
    f = PathFilter()
    assert not f
    assert not f.matches(make_scope("/anything"))
    assert repr(f) == "PathFilter([])"


@pytest.mark.parametrize(
    ("bad", "error"), [(["health"], ValueError), ([""], ValueError), ([None], TypeError)]
)
def test_invalid_patterns_fail_at_construction(bad: list[object], error: type[Exception]) -> None:
    """Relative or non-string patterns are refused with a message naming the option."""
    with pytest.raises(error, match="exclude_paths"):
        PathFilter(bad)  # type: ignore[arg-type]
    with pytest.raises(error, match="openai_paths"):
        PathFilter(bad, option="openai_paths")  # type: ignore[arg-type]


def test_single_string_is_refused() -> None:
    """A bare string would iterate per character; refuse it."""
    with pytest.raises(TypeError, match="exclude_paths"):
        PathFilter("/health")


segment = st.text(
    alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=8
)
paths = st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


@given(paths, paths)
def test_property_exact_match_only(excluded: str, requested: str) -> None:
    """A path is excluded iff it equals a configured path."""
    assume(not excluded.endswith("/*"))
    f = PathFilter([excluded])
    assert f.matches_path(requested) == (requested == excluded)


@given(paths, st.sampled_from(["/", "//", "/../", "/./", ";", "z", "/x"]))
def test_property_suffixes_never_match(excluded: str, suffix: str) -> None:
    """Appending anything to an excluded path never keeps it excluded."""
    assume(not excluded.endswith("/*"))
    assert not PathFilter([excluded]).matches_path(excluded + suffix)


@given(paths)
def test_property_case_sensitive(excluded: str) -> None:
    """Matching is case-sensitive, as routers are."""
    swapped = excluded.swapcase()
    assume(swapped != excluded)
    assert not PathFilter([excluded]).matches_path(swapped)


patterns = st.lists(st.one_of(paths, paths.map(lambda p: p + "/*")), max_size=3)
roots = st.sampled_from(["", "/api", "/api/v1"])


def _scope_for(path: str, root: str) -> dict[str, object]:
    return {"type": "http", "path": path, "root_path": root}


@given(patterns, paths, roots, st.booleans())
def test_property_fast_path_agrees_with_route_path(
    configured: list[str], path: str, root: str, mounted: bool
) -> None:
    """`matches` (with its no-root_path shortcut) answers as `matches_path(route_path(scope))` does."""
    f = PathFilter(configured)
    scope = _scope_for(root + path if mounted else path, root)
    expected = bool(configured) and f.matches_path(route_path(scope))
    assert f.matches(scope) == expected


def test_fast_path_without_root_path_or_path() -> None:
    """A scope with no `root_path` (or an empty one) and no `path` is compared as the empty path."""
    f = PathFilter(["/health", "/static/*"])
    assert f.matches({"type": "http", "path": "/static/a.css"})
    assert not f.matches({"type": "http", "path": "/static/"})
    assert not f.matches({"type": "http"})
