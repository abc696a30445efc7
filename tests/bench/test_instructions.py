"""benchmarks/instructions.py: the instruction-count check of the stack targets."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import instructions


def test_the_stack_targets_bring_their_layers_and_bases() -> None:
    """Every variant a stack target divides by is counted, and every base it subtracts."""
    targets = [t for t in instructions.TARGETS if t.name in instructions.STACK_TARGETS]
    assert len(targets) == len(instructions.STACK_TARGETS)
    names = {v.name for v in instructions._needed(targets, [])}
    for target in targets:
        assert target.numerator in names and set(target.denominators) <= names
    assert {"bare.asgi", "bare.fastapi"} <= names


def test_child_runs_a_variant_and_refuses_a_broken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The measured child answers every request with 200, or exits naming the variant."""
    instructions.child("kit.stack.cached", 20)

    async def refusing(*args: object, **kwargs: object) -> tuple[int, int, int]:
        return 0, 0, 3

    monkeypatch.setattr(instructions, "run_batch", refusing)
    with pytest.raises(SystemExit, match=r"kit\.rbac: 6 requests"):
        instructions.child("kit.rbac", 5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instruction_counts_are_deterministic_and_additive() -> None:
    """Two counts of one variant agree closely; a layer adds instructions over its base."""
    bare = instructions.per_request("bare.asgi", 20, 60)
    again = instructions.per_request("bare.asgi", 20, 60)
    layer = instructions.per_request("kit.request_id", 20, 60)
    assert bare > 1_000
    assert abs(bare - again) / bare < 0.02
    assert layer > bare
