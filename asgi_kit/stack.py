"""``Stack``: compose ASGI middleware in a declared order, once.

The first layer added is the outermost (it sees the request first), as in Starlette's
``middleware=[...]``. A stack is immutable; :meth:`Stack.use` returns a new one.
:meth:`Stack.wrap` builds every layer eagerly, so a bad option fails at start-up and the
error names the layer. Wrapping adds no code of its own to the request path: the result
*is* the outermost middleware instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, overload

from asgi_kit._asgi.layer import Middleware, P
from asgi_kit._asgi.options import check_callable, check_instance
from asgi_kit._asgi.types import ASGIApp

if TYPE_CHECKING:  # pragma: no cover - typing only
    import logging

    from opentelemetry.sdk.trace import TracerProvider

    from asgi_kit.auth import APIKeyStore, TokenRevocationStore
    from asgi_kit.budget import BudgetStore
    from asgi_kit.config import KitSettings
    from asgi_kit.metrics import HTTPMetrics
    from asgi_kit.ratelimit import RateLimitBackend


class Stack:
    """An ordered, immutable list of middleware; ``wrap(app)`` applies them."""

    __slots__ = ("_layers",)

    def __init__(self, layers: Iterable[Middleware[Any]] = ()) -> None:
        self._layers = tuple(
            check_instance("Stack layers", layer, Middleware, "Middleware(...) instances") for layer in layers
        )

    def use(
        self, factory: Callable[Concatenate[ASGIApp, P], ASGIApp], /, *args: P.args, **kwargs: P.kwargs
    ) -> Stack:
        """A new stack with ``factory`` added inside the layers already present."""
        return Stack((*self._layers, Middleware(factory, *args, **kwargs)))

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """Build every layer around ``app``; the first layer ends up outermost."""
        wrapped = check_callable("app", app)
        for layer in reversed(self._layers):
            wrapped = layer.build(wrapped)
        return wrapped

    @overload
    def __call__(self, app: ASGIApp) -> ASGIApp: ...
    @overload
    def __call__(self, app: Any) -> ASGIApp: ...
    def __call__(self, app: Any) -> ASGIApp:
        return self.wrap(app)

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Middleware[Any]]:
        return iter(self._layers)

    def __getitem__(self, index: int) -> Middleware[Any]:
        return self._layers[index]

    def __add__(self, other: Stack) -> Stack:
        if not isinstance(other, Stack):
            return NotImplemented
        return Stack((*self._layers, *other._layers))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stack) and self._layers == other._layers

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self._layers:
            return "Stack([])"
        inner = ",\n".join(f"    {layer!r}" for layer in self._layers)
        return f"Stack([\n{inner},\n])"

    @classmethod
    def from_settings(
        cls,
        settings: KitSettings,
        *,
        logger: logging.Logger | None = None,
        metrics: HTTPMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
        api_key_store: APIKeyStore | None = None,
        revocation_store: TokenRevocationStore | None = None,
        budget_store: BudgetStore | None = None,
        ratelimit_backend: RateLimitBackend | None = None,
        debug: bool = False,
    ) -> Stack:
        """The recommended production stack for ``settings`` (see ``docs/stack.md``).

        Only concerns whose section is enabled are added. The keyword collaborators replace
        what would be built from the settings.
        """
        from asgi_kit._stack_settings import layers_from_settings

        return cls(
            layers_from_settings(
                settings,
                logger=logger,
                metrics=metrics,
                tracer_provider=tracer_provider,
                api_key_store=api_key_store,
                revocation_store=revocation_store,
                budget_store=budget_store,
                ratelimit_backend=ratelimit_backend,
                debug=debug,
            )
        )


__all__ = ["Middleware", "Stack"]
