"""Shared test harness: raw-ASGI helpers, the same small app under every framework, real
servers on free loopback ports, the PostgreSQL fixture, and the contract every middleware
must keep (:class:`asgi_kit.testing.contract.MiddlewareContract`)."""
