"""LifespanHooksMiddleware: resources opened before startup, closed after shutdown."""

from __future__ import annotations

import gc

import pytest

from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit.testing import LifespanProbe, call_app, run_lifespan
from tests.harness.apps import bare_app


async def test_hooks_run_around_the_app_lifespan() -> None:
    """Startup hooks run before the app's startup, shutdown hooks after its shutdown, reversed."""
    events: list[str] = []
    probe = LifespanProbe()

    def hook(name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            events.append(f"{name}:{len(probe.seen)}")

        return run

    app = LifespanHooksMiddleware(
        probe, on_startup=[hook("a"), hook("b")], on_shutdown=[hook("c"), hook("d")]
    )
    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["a:0", "b:0", "d:2", "c:2"]


async def test_failed_startup_is_reported() -> None:
    """A failing startup hook becomes lifespan.startup.failed with the reason."""

    async def broken() -> None:
        raise RuntimeError("pool could not open")

    sent = await run_lifespan(LifespanHooksMiddleware(LifespanProbe(), on_startup=[broken]))
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "pool could not open" in sent[0]["message"]


async def test_http_passes_through_and_app_errors_propagate() -> None:
    """HTTP is untouched; an app failing its own lifespan still raises."""
    send = await call_app(LifespanHooksMiddleware(bare_app()), path="/ok")
    assert send.status == 200

    async def no_lifespan(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("lifespan unsupported")

    with pytest.raises(RuntimeError, match="unsupported"):
        await run_lifespan(LifespanHooksMiddleware(no_lifespan))


def test_hooks_must_be_callable() -> None:
    """Non-callable hooks fail at construction, naming the option."""
    with pytest.raises(TypeError, match="on_startup"):
        LifespanHooksMiddleware(bare_app(), on_startup=["nope"])  # type: ignore[list-item]


@pytest.mark.parametrize("freeze", [True, False])
async def test_startup_heap_is_frozen_once_the_app_started(freeze: bool) -> None:
    """freeze_heap (the default) gc.freeze()s the heap at lifespan.startup.complete; False leaves it."""
    gc.unfreeze()
    frozen_at_hook: list[int] = []

    async def hook() -> None:
        frozen_at_hook.append(gc.get_freeze_count())

    app = LifespanHooksMiddleware(LifespanProbe(), on_startup=[hook], freeze_heap=freeze)
    await run_lifespan(app)
    assert frozen_at_hook == [0]  # nothing is frozen before the app has started
    assert (gc.get_freeze_count() > 0) is freeze


def test_freeze_heap_must_be_a_bool() -> None:
    """A non-bool freeze_heap fails at construction, naming the option."""
    with pytest.raises(TypeError, match="freeze_heap"):
        LifespanHooksMiddleware(bare_app(), freeze_heap="yes")  # type: ignore[arg-type]
