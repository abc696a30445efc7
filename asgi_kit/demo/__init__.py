"""The demo gateway (``asgi-kit demo``): an OpenAI-compatible API router built from the kit."""

from asgi_kit.demo.config import DemoConfig
from asgi_kit.demo.gateway import build_gateway, key_record

__all__ = ["DemoConfig", "build_gateway", "key_record"]
