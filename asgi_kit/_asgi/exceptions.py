"""The one base of every exception the kit raises, and the store outage every store shares.

Catch :class:`AsgiKitError` to catch anything the kit raised on purpose. The tree::

    AsgiKitError
    ├── ConfigError (also ValueError)          asgi_kit.config: invalid settings, every field named
    ├── ProblemError                           asgi_kit.errors: becomes its RFC 9457 problem
    │   ├── JSONBodyError                      asgi_kit.validation: a body refused at the door
    │   └── BodyTooLargeError                  asgi_kit.guards: the 413 of the body limit
    ├── StoreUnavailableError                  a store could not be consulted: answer 503, not 4xx
    │   ├── CredentialStoreUnavailableError    asgi_kit.auth: API-key store or JWKS
    │   ├── BudgetStoreUnavailableError        asgi_kit.budget: budgets and leases
    │   ├── DatabaseUnavailableError           asgi_kit.database: both of the above, from PostgreSQL
    │   └── RateLimitBackendError              asgi_kit.ratelimit: Redis unreachable or too slow
    ├── InvalidTokenError                      asgi_kit.auth: a refused JWT (a subclass per reason)
    ├── InvalidAPIKeyError                     asgi_kit.auth: a refused API key
    ├── ReservationRefusedError                asgi_kit.budget: the budget cannot cover a call
    ├── LedgerFullError, SpoolLockedError      asgi_kit.budget: the usage ledger's spool
    ├── ClientDisconnected (also OSError)      asgi_kit.budget: the client left a metered stream
    ├── DatabaseError                          asgi_kit.database: a statement failed (no driver text)
    │   ├── UnknownOrganizationError (also LookupError)
    │   └── MigrationError → MigrationLockError
    ├── HTTPClientError                        asgi_kit.httpclient: transport and status errors
    ├── OpenAIError                            asgi_kit.httpclient: the OpenAI client's errors
    └── SSEDecodeError (also ValueError)       asgi_kit.httpclient: a malformed event stream

Messages never hold a secret, a DSN or a driver's text: they are safe to log and to show.
"""

from __future__ import annotations


class AsgiKitError(Exception):
    """Base of every exception the kit raises on purpose."""


class StoreUnavailableError(AsgiKitError):
    """A store (credentials, budgets, leases) could not be consulted: the answer is a 503.

    ``retry_after`` is a hint in seconds for the ``Retry-After`` of the 503, when known. The
    message holds no DSN or driver text.
    """

    def __init__(self, message: str = "store unavailable", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


__all__ = ["AsgiKitError", "StoreUnavailableError"]
