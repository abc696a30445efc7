"""``Middleware``: one layer of a stack, as a factory and its options.

Below ``stack`` so that the settings preset can build layers without importing the builder
that calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Concatenate, Generic, ParamSpec

from asgi_kit._asgi.options import check_callable
from asgi_kit._asgi.types import ASGIApp

P = ParamSpec("P")


class Middleware(Generic[P]):
    """One layer: a factory called as ``factory(app, *args, **kwargs)``.

    Shaped like Starlette's ``Middleware`` (iterable as ``(factory, args, kwargs)``) so lists
    of either can be moved between the two.
    """

    __slots__ = ("args", "cls", "kwargs")

    def __init__(
        self, cls: Callable[Concatenate[ASGIApp, P], ASGIApp], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        self.cls = check_callable("middleware factory", cls)
        self.args: tuple[Any, ...] = tuple(args)
        self.kwargs: dict[str, Any] = dict(kwargs)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cls, self.args, self.kwargs))

    def build(self, app: ASGIApp) -> ASGIApp:
        try:
            return self.cls(app, *self.args, **self.kwargs)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self.name}: {exc}") from exc

    @property
    def name(self) -> str:
        return getattr(self.cls, "__qualname__", None) or repr(self.cls)

    def __repr__(self) -> str:
        parts = [self.name]
        parts.extend(repr(a) for a in self.args)
        parts.extend(f"{k}={short_repr(v)}" for k, v in self.kwargs.items())
        return f"Middleware({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Middleware):
            return NotImplemented
        return (self.cls, self.args, self.kwargs) == (other.cls, other.args, other.kwargs)

    __hash__ = None  # type: ignore[assignment]


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["Middleware", "P", "short_repr"]
