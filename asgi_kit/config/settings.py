"""``KitSettings``: the one place the environment is read."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from asgi_kit.config.sections import (
    APIKeySettings,
    BudgetSettings,
    DatabaseSettings,
    GuardSettings,
    HTTPClientSettings,
    JWTSettings,
    LoggingSettings,
    MetricsSettings,
    RateLimitSettings,
    TracingSettings,
)

ENV_PREFIX = "ASGI_KIT_"
ENV_NESTED_DELIMITER = "__"


class KitSettings(BaseSettings):
    """Every concern's settings. Build it with :func:`asgi_kit.config.load_settings`.

    Environment variables use the ``ASGI_KIT_`` prefix and ``__`` for nesting
    (``ASGI_KIT_JWT__SECRET``). Secrets are ``SecretStr``: masked in ``repr`` and errors.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    service_name: str = Field(default="asgi-kit-service", min_length=1, max_length=128)
    environment: str = Field(default="development", min_length=1, max_length=64)

    jwt: JWTSettings = Field(default_factory=JWTSettings)
    api_keys: APIKeySettings = Field(default_factory=APIKeySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    http_client: HTTPClientSettings = Field(default_factory=HTTPClientSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    guards: GuardSettings = Field(default_factory=GuardSettings)

    @field_validator("service_name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must hold printable characters only")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() merges files itself (it must know where each value came from);
        # KitSettings() alone reads the environment under explicit keyword arguments.
        return (init_settings, env_settings)

    def __str__(self) -> str:
        return repr(self)


def settings_data(settings: KitSettings) -> dict[str, Any]:
    """A JSON-safe dump with secrets masked, for ``asgi-kit`` diagnostics."""
    return settings.model_dump(mode="json")


__all__ = ["ENV_NESTED_DELIMITER", "ENV_PREFIX", "KitSettings", "settings_data"]
