"""Option validation, value objects and reprs: fail at construction, never leak secrets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgi_kit.httpclient import (
    IDEMPOTENT_METHODS,
    HTTPClient,
    Limits,
    RetryPolicy,
    SystemClock,
    Timeouts,
    VirtualClock,
)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"max_retries": -1}, ValueError, "max_retries"),
        ({"max_retries": 1.5}, TypeError, "max_retries"),
        ({"max_retries": True}, TypeError, "max_retries"),
        ({"backoff_base": -1}, ValueError, "backoff_base"),
        ({"backoff_max": float("nan")}, ValueError, "backoff_max"),
        ({"max_retry_after": "60"}, TypeError, "max_retry_after"),
        ({"jitter": 3}, TypeError, "jitter"),
        ({"give_up": "yes"}, TypeError, "give_up"),
    ],
)
def test_retry_policy_validation(options: dict[str, Any], error: type[Exception], name: str) -> None:
    """A bad RetryPolicy option raises naming the option."""
    with pytest.raises(error, match=name):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": None}, TypeError, "timeout"),
        ({"connect_timeout": -1}, ValueError, "connect_timeout"),
        ({"read_timeout": 0}, ValueError, "read_timeout"),
        ({"deadline": 0}, ValueError, "deadline"),
        ({"max_retries": -2}, ValueError, "max_retries"),
        ({"max_retry_after": -1}, ValueError, "max_retry_after"),
        ({"max_redirects": -1}, ValueError, "max_redirects"),
        ({"max_redirects": "3"}, TypeError, "max_redirects"),
        ({"retry": {"max_retries": 1}}, TypeError, "retry"),
        ({"limits": {"max_connections": 1}}, TypeError, "limits"),
        ({"on_attempt": "print"}, TypeError, "on_attempt"),
        ({"base_url": "/relative"}, ValueError, "base_url"),
    ],
)
def test_client_validation(options: dict[str, Any], error: type[Exception], name: str) -> None:
    """A bad HTTPClient option raises at construction, naming the option."""
    with pytest.raises(error, match=name):
        HTTPClient(**options)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"max_connections": -1}, ValueError, "max_connections"),
        ({"max_connections_per_host": 1.5}, TypeError, "max_connections_per_host"),
        ({"keepalive_expiry": "15"}, TypeError, "keepalive_expiry"),
    ],
)
def test_limits_validation(options: dict[str, Any], error: type[Exception], name: str) -> None:
    """A bad Limits option raises naming the option: TypeError for a wrong type, else ValueError."""
    with pytest.raises(error, match=name):
        Limits(**options)


def test_flat_options_override_the_policy() -> None:
    """max_retries and max_retry_after on the client override the given policy's."""
    client = HTTPClient(
        retry=RetryPolicy(max_retries=5, backoff_base=2.0), max_retries=1, max_retry_after=5.0
    )
    assert (client.retry.max_retries, client.retry.max_retry_after, client.retry.backoff_base) == (
        1,
        5.0,
        2.0,
    )
    assert HTTPClient().retry == RetryPolicy()


def test_settings_field_names_are_client_options() -> None:
    """HTTPClientSettings.options() feeds HTTPClient(**...) directly."""
    from asgi_kit.config.sections import HTTPClientSettings

    client = HTTPClient(**HTTPClientSettings().options())
    assert client.timeouts == Timeouts(attempt=30.0, connect=5.0)


def test_backoff_schedule_is_exponential_capped_and_jittered() -> None:
    """Bounds double from backoff_base up to backoff_max; full jitter stays within [0, bound]."""
    exact = RetryPolicy(backoff_base=0.5, backoff_max=3.0, jitter=lambda bound: bound).backoff_schedule()
    assert [next(exact) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(backoff_base=0.5, backoff_max=3.0).backoff_schedule()
    waits = [next(jittered) for _ in range(200)]
    assert all(0 <= w <= 3.0 for w in waits) and len(set(waits)) > 100


def test_method_names_are_normalised() -> None:
    """retry_methods are upper-cased; the default is the idempotent set."""
    assert RetryPolicy(retry_methods=frozenset({"get"})).retry_methods == {"GET"}
    assert {"GET", "PUT", "DELETE"} <= IDEMPOTENT_METHODS and "POST" not in IDEMPOTENT_METHODS


def test_reprs_are_readable_and_secret_free() -> None:
    """Value objects have readable reprs; the client shows header names, never values."""
    assert repr(Timeouts()) == "Timeouts(attempt=30.0, connect=5.0, read=None)"
    assert repr(Limits()) == "Limits(max_connections=100, max_connections_per_host=0, keepalive_expiry=15.0)"
    assert "jitter" not in repr(RetryPolicy()) and "max_retries=3" in repr(RetryPolicy())
    client = HTTPClient(base_url="https://api.example.com/v1", headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(client) and "Authorization" in repr(client)
    assert repr(SystemClock()) == "SystemClock()"
    assert "sleeps=0" in repr(VirtualClock())


def test_timeouts_stream_read_defaults_to_the_attempt_timeout() -> None:
    """read=None means the idle timeout between stream chunks is the attempt timeout."""
    assert Timeouts(attempt=7.0).stream_read == 7.0
    assert Timeouts(attempt=7.0, read=2.0).stream_read == 2.0


async def test_clocks() -> None:
    """The system clock really sleeps; the virtual clock records and advances."""
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= before and clock.time() > 1e9
    virtual = VirtualClock(monotonic=5.0, time=10.0)
    await asyncio.wait_for(virtual.sleep(100.0), 1)
    assert (virtual.monotonic(), virtual.time(), virtual.sleeps) == (105.0, 110.0, [100.0])
