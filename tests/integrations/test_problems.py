"""The framework-free part of the adapters: exceptions to problems, headers to pairs."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.errors import NOT_FOUND
from asgi_kit.integrations._problems import (
    MAX_ERRORS,
    MAX_MESSAGE_LENGTH,
    header_pairs,
    http_problem,
    validation_problem,
)


def test_default_detail_is_dropped() -> None:
    """A framework's default detail (the status phrase) gives exactly the kit's template."""
    assert http_problem(404, "Not Found") == NOT_FOUND
    assert http_problem(404) == NOT_FOUND
    assert http_problem(404, "") == NOT_FOUND


def test_unknown_status_gets_generic_title() -> None:
    """A status without a phrase (499) still renders, with its detail."""
    problem = http_problem(499, "client closed")
    assert (problem.status, problem.title, problem.detail) == (499, "Error", "client closed")


def test_validation_list_is_bounded() -> None:
    """At most MAX_ERRORS errors are listed and each message is cut to MAX_MESSAGE_LENGTH."""
    errors = [(("body", i), "x" * 1000, "too_long") for i in range(MAX_ERRORS + 10)]
    problem = validation_problem(errors)
    listed = problem.extensions["errors"]
    assert len(listed) == MAX_ERRORS
    assert listed[1] == {"loc": ["body", 1], "msg": "x" * MAX_MESSAGE_LENGTH, "type": "too_long"}
    assert problem.status == 422


def test_header_pairs_decode_bytes_and_drop_framing() -> None:
    """Bytes headers are decoded, duplicates kept, content-type/length dropped."""
    pairs = header_pairs(
        [(b"WWW-Authenticate", b"Bearer"), ("www-authenticate", "Basic"), ("Content-Type", "x")]
    )
    assert pairs == [("WWW-Authenticate", "Bearer"), ("www-authenticate", "Basic")]
    assert header_pairs({"Retry-After": 3}) == [("Retry-After", "3")]
    assert header_pairs(None) == []


@given(
    st.integers(min_value=400, max_value=599),
    st.one_of(st.none(), st.text(), st.dictionaries(st.text(), st.integers())),
)
def test_http_problem_keeps_status_and_hides_5xx_detail(status: int, detail: Any) -> None:
    """Any error status and detail give a problem with that status; a 5xx never carries the detail."""
    problem = http_problem(status, detail)
    assert problem.status == status
    body = problem.to_dict()
    if status >= 500:
        assert problem == http_problem(status)  # the detail given never shows
    elif isinstance(detail, dict):
        assert body["details"] == detail


@given(
    st.lists(
        st.tuples(
            st.lists(st.one_of(st.integers(), st.text())),
            st.one_of(st.text(), st.integers()),
            st.text(),
        ),
        max_size=80,
    )
)
def test_validation_problem_is_always_well_formed(errors: list[tuple[list[Any], Any, str]]) -> None:
    """Whatever the framework reports, every listed error has exactly loc, msg and type, of JSON-safe types."""
    listed = validation_problem(errors, 400).extensions["errors"]
    assert len(listed) == min(len(errors), MAX_ERRORS)
    for item in listed:
        assert set(item) == {"loc", "msg", "type"}
        assert all(isinstance(part, int | str) for part in item["loc"])
        assert isinstance(item["msg"], str) and len(item["msg"]) <= MAX_MESSAGE_LENGTH
