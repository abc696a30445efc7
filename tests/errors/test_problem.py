"""ProblemDetails, templates, write_problem_details and problem_response."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from asgi_kit._asgi.context import TraceIds, trace_ids_var, with_request_id
from asgi_kit.errors import (
    BUDGET_EXCEEDED,
    NOT_FOUND,
    UNAUTHORIZED,
    ProblemDetails,
    ProblemError,
    new_problem_details,
    problem_response,
    write_problem_details,
)
from asgi_kit.testing import RecordingSend, StrictReceive, call_app, make_scope


def test_templates_match_the_contract() -> None:
    """The fixed templates carry the contract's status, title and detail."""
    assert (BUDGET_EXCEEDED.status, BUDGET_EXCEEDED.title) == (429, "Budget Exceeded")
    assert BUDGET_EXCEEDED.detail == "Organization token budget exceeded"
    assert (UNAUTHORIZED.status, NOT_FOUND.status) == (401, 404)
    assert UNAUTHORIZED.type == "about:blank"


def test_new_problem_details_defaults_title_to_phrase() -> None:
    """Without a title, the HTTP status phrase is used; unknown statuses get a generic one."""
    assert new_problem_details(404).title == "Not Found"
    assert new_problem_details(599).title == "Error"
    problem = new_problem_details(400, "Bad", "why", field="x")
    assert problem.extensions == {"field": "x"}


def test_extensions_never_override_standard_members() -> None:
    """Standard member names given as extensions are dropped; the standard members win."""
    problem = new_problem_details(403, "Forbidden", type="https://example.com/forbidden", extra=1)
    later = problem.with_extensions(status=200, title="x", type="evil", detail="d", instance="/i", more=2)
    body = later.to_dict()
    assert (body["status"], body["title"], body["type"]) == (
        403,
        "Forbidden",
        "https://example.com/forbidden",
    )
    assert "instance" not in body and body["more"] == 2 and body["extra"] == 1
    assert later.with_detail("d").to_dict()["detail"] == "d"


def test_invalid_problems_are_refused() -> None:
    """Status must be an error status and the title non-empty."""
    with pytest.raises(ValidationError):
        ProblemDetails(title="x", status=200)
    with pytest.raises(ValidationError):
        ProblemDetails(title="", status=400)


member_names = st.sampled_from(["type", "title", "status", "detail", "instance", "a", "b", "request_id"])


@given(st.dictionaries(member_names, st.one_of(st.text(), st.integers(), st.none())))
def test_property_standard_members_win(extensions: dict[str, object]) -> None:
    """Whatever extension members are supplied, the standard ones come from the fields."""
    body = new_problem_details(418, "T").with_extensions(**extensions).to_dict()
    assert (body["title"], body["status"], body["type"]) == ("T", 418, "about:blank")
    assert "detail" not in body and "instance" not in body
    for key in set(extensions) - {"type", "title", "status", "detail", "instance"}:
        assert body[key] == extensions[key]


async def test_write_includes_request_and_trace_id_and_length() -> None:
    """The response is Content-Length framed and carries the request id and trace id."""
    send = RecordingSend()
    token = trace_ids_var.set(TraceIds("a" * 32, "b" * 16, "tp"))
    try:
        with with_request_id("req-1"):
            await write_problem_details(send, NOT_FOUND, {"X-Extra": "1"})
    finally:
        trace_ids_var.reset(token)
    body = send.json()
    assert body["request_id"] == "req-1" and body["trace_id"] == "a" * 32
    assert send.header("content-type") == "application/problem+json"
    assert send.header("content-length") == str(len(send.body))
    assert send.header("x-extra") == "1"


async def test_head_gets_no_body_and_scope_request_id_is_used() -> None:
    """HEAD gets headers only; the request id falls back to scope state."""
    send = RecordingSend()
    scope = make_scope(method="HEAD", state={"request_id": "from-scope"})
    await write_problem_details(send, NOT_FOUND, [(b"x-a", b"1")], scope=scope)
    assert send.body == b""
    assert int(send.header("content-length") or 0) > 0
    send = RecordingSend()
    await write_problem_details(send, NOT_FOUND, scope=make_scope(state={"request_id": "from-scope"}))
    assert send.json()["request_id"] == "from-scope"


async def test_header_injection_is_refused() -> None:
    """A header value with CR/LF never reaches the wire."""
    with pytest.raises(ValueError, match="CR or LF"):
        await write_problem_details(RecordingSend(), NOT_FOUND, {"x-bad": "a\r\nSet-Cookie: x"})


async def test_problem_response_app() -> None:
    """problem_response answers HTTP with the problem, closes websockets, ignores lifespan."""
    app = problem_response(NOT_FOUND, {"x-why": "fallback"})
    send = await call_app(app, path="/anything")
    assert send.status == 404 and send.header("x-why") == "fallback"
    assert json.loads(send.body)["title"] == "Not Found"
    sent: list[dict[str, object]] = []

    async def record(message: dict[str, object]) -> None:
        sent.append(message)

    await app(make_scope("/ws", type="websocket"), StrictReceive(), record)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}]
    await app({"type": "lifespan"}, StrictReceive(), record)  # type: ignore[arg-type]
    assert len(sent) == 1


def test_problem_error_carries_problem() -> None:
    """ProblemError keeps the problem and headers and has a readable message."""
    err = ProblemError(NOT_FOUND, {"a": "b"})
    assert err.problem is NOT_FOUND and err.headers == {"a": "b"}
    assert str(err) == "404 Not Found"
