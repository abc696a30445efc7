"""One settings section per concern. Field names match the keyword options of the layer they
configure, so ``XMiddleware(app, **settings.x.options())`` works."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from asgi_kit._asgi.paths import PathFilter


class Section(BaseModel):
    """Base of every section: strict about unknown keys, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    enabled: bool = False

    def options(self, *exclude: str) -> dict[str, Any]:
        """The section as middleware keyword options (``enabled`` left out, secrets revealed)."""
        data: dict[str, Any] = {}
        for name in type(self).model_fields:
            if name == "enabled" or name in exclude:
                continue
            value = getattr(self, name)
            data[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return data


class ProviderSettings(BaseModel):
    """How to read an identity provider's access tokens: the fields of ``auth.ProviderProfile``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    typ: tuple[str, ...] = ("at+jwt", "JWT")
    require_typ: bool = False
    roles_claim: str = Field(default="roles", min_length=1)
    role_map: dict[str, str] = Field(default_factory=dict)
    default_role: str | None = Field(default=None, min_length=1)
    org_claim: str | None = Field(default="org_id", min_length=1)
    scope_claims: tuple[str, ...] = ("scope", "scp")
    max_lifetime: int = Field(default=86_400, gt=0, le=366 * 86_400)


class JWTSettings(Section):
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA", "Ed25519"] = "HS256"
    secret: SecretStr | None = None
    private_key: SecretStr | None = None
    public_key: str | None = None
    issuer: str | None = None
    audience: str | None = None
    access_ttl: int = Field(default=900, gt=0, le=86_400)
    refresh_ttl: int = Field(default=30 * 86_400, gt=0)
    leeway: int = Field(default=0, ge=0, le=300)
    key_id: str | None = None
    max_lifetime: int | None = Field(default=None, gt=0)
    max_token_bytes: int = Field(default=8192, ge=256, le=65_536)
    jwks_url: str | None = None
    jwks_cache_ttl: float = Field(default=300.0, gt=0)
    jwks_cooldown: float = Field(default=30.0, ge=0)
    jwks_timeout: float = Field(default=5.0, gt=0)
    provider: ProviderSettings | None = None


class APIKeySettings(Section):
    prefix: str = Field(default="sk", pattern=r"^[a-z][a-z0-9]{0,15}$")
    environment: str = Field(default="live", pattern=r"^[a-z][a-z0-9]{0,15}$")
    header: str = "X-API-Key"
    pepper: SecretStr | None = None
    pepper_version: int = Field(default=1, ge=1)
    last_used_interval: float = Field(default=60.0, ge=0)


class DatabaseSettings(Section):
    url: SecretStr | None = None
    min_size: int = Field(default=1, ge=0)
    max_size: int = Field(default=10, ge=1)
    timeout: float = Field(default=5.0, gt=0)
    max_lifetime: float = Field(default=3600.0, gt=0)
    max_idle: float = Field(default=600.0, gt=0)
    migrate_on_start: bool = False

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if not raw.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
                raise ValueError("must be a postgresql:// URL")
        return value


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    exclude_paths: list[str] = Field(default_factory=list)
    trusted_proxies: list[str] = Field(default_factory=list)
    request_id_header: str = "X-Request-ID"


class MetricsSettings(Section):
    path: str = "/metrics"
    exclude_paths: list[str] = Field(default_factory=lambda: ["/metrics"])
    multiprocess_dir: str | None = None


class TracingSettings(Section):
    exporter: Literal["otlp", "console", "none"] = "otlp"
    endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    exclude_paths: list[str] = Field(default_factory=list)


class HTTPClientSettings(Section):
    base_url: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)
    deadline: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    max_retry_after: float = Field(default=60.0, ge=0)


class BudgetSettings(Section):
    cache_ttl: float = Field(default=1.0, ge=0, le=60)
    cache_max_entries: int = Field(default=10_000, ge=1)
    fail_open: bool = False
    openai_paths: bool | list[str] = False
    retry_after_period_end: bool = False
    exclude_paths: list[str] = Field(default_factory=list)


class RateLimitSettings(Section):
    """``RateLimitMiddleware``'s options, plus the organization's quota (``quotas["org"]``) and
    where the counts live (``redis_url`` and ``key_prefix``: a ``RedisBackend``; none: in memory)."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    org_requests_per_minute: int | None = Field(default=None, ge=1)
    org_tokens_per_minute: int | None = Field(default=None, ge=1)
    window: float = Field(default=60.0, ge=0.001, le=86_400)
    redis_url: SecretStr | None = None
    key_prefix: str = "asgi-kit:ratelimit:"
    fail_open: bool = True
    default_completion_tokens: int = Field(default=1000, ge=0)
    max_estimate_body: int = Field(default=1 << 20, ge=1)
    openai_paths: bool | list[str] = False
    exclude_paths: list[str] = Field(default_factory=list)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("openai_paths", "exclude_paths")
    @classmethod
    def _path_patterns(cls, value: bool | list[str]) -> bool | list[str]:
        if not isinstance(value, bool):
            try:
                PathFilter(value)
            except ValueError:
                # PathFilter's own message quotes the entry; a configuration error never does.
                raise ValueError(
                    "entries must be absolute paths: '/exact' or a '/prefix/*' subtree"
                ) from None
        return value

    @model_validator(mode="after")
    def _some_limit_when_enabled(self) -> Self:
        limits = (
            self.requests_per_minute,
            self.tokens_per_minute,
            self.org_requests_per_minute,
            self.org_tokens_per_minute,
        )
        if self.enabled and all(limit is None for limit in limits):
            raise ValueError(
                "enabled needs a limit: set requests_per_minute, tokens_per_minute, "
                "org_requests_per_minute or org_tokens_per_minute"
            )
        return self


class GuardSettings(Section):
    timeout: float | None = Field(default=None, gt=0)
    max_body_size: int | None = Field(default=None, gt=0)
    security_headers: bool = True


__all__ = [
    "APIKeySettings",
    "BudgetSettings",
    "DatabaseSettings",
    "GuardSettings",
    "HTTPClientSettings",
    "JWTSettings",
    "LoggingSettings",
    "MetricsSettings",
    "RateLimitSettings",
    "Section",
    "TracingSettings",
]
