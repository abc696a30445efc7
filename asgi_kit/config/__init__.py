"""Configuration from defaults, files, the environment and overrides (pydantic-settings).

Needs the ``config`` extra: ``pip install 'asgi-kit[config]'``.
"""

from asgi_kit._asgi.optional import require

require("pydantic_settings", "config")

from asgi_kit.config.errors import ConfigError, FieldProblem
from asgi_kit.config.loading import load_settings
from asgi_kit.config.sections import (
    APIKeySettings,
    BudgetSettings,
    DatabaseSettings,
    GuardSettings,
    HTTPClientSettings,
    JWTSettings,
    LoggingSettings,
    MetricsSettings,
    ProviderSettings,
    RateLimitSettings,
    TracingSettings,
)
from asgi_kit.config.settings import KitSettings

__all__ = [
    "APIKeySettings",
    "BudgetSettings",
    "ConfigError",
    "DatabaseSettings",
    "FieldProblem",
    "GuardSettings",
    "HTTPClientSettings",
    "JWTSettings",
    "KitSettings",
    "LoggingSettings",
    "MetricsSettings",
    "ProviderSettings",
    "RateLimitSettings",
    "TracingSettings",
    "load_settings",
]
