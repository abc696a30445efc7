"""The usage spool: fsync-ed appends, a byte bound, torn lines after a crash, acknowledged removal."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit.budget import LedgerFullError, Spool, SpoolLockedError
from asgi_kit.budget.spool import MAX_SPOOL_FILES


def item(n: int) -> dict[str, Any]:
    return {"request_id": f"r{n}", "tokens": n}


def test_append_survives_reopen(tmp_path: Path) -> None:
    """Appended records are read back, in order, by the next process."""
    spool = Spool(tmp_path / "a.spool")
    spool.open()
    spool.append([item(1), item(2)])
    spool.append([item(3)])
    spool.close()
    again = Spool(tmp_path / "a.spool")
    again.open()
    assert again.peek(10) == [item(1), item(2), item(3)]
    again.close()


def test_full_spool_raises_and_writes_nothing(tmp_path: Path) -> None:
    """An append past max_bytes raises LedgerFullError, counts it, and leaves the file as it was."""
    spool = Spool(tmp_path / "a.spool", max_bytes=1024)
    spool.open()
    spool.append([item(n) for n in range(20)])
    size = spool.size
    with pytest.raises(LedgerFullError, match="spool full"):
        spool.append([item(n) for n in range(20, 40)])
    assert spool.size == size == os.path.getsize(tmp_path / "a.spool")
    assert spool.count == 20 and spool.full_errors == 1
    spool.ack(20)
    spool.append([item(n) for n in range(20, 40)])  # room again once acknowledged
    assert spool.count == 20
    spool.close()


def test_ack_removes_records_and_compacts(tmp_path: Path) -> None:
    """Acknowledging every record empties the file; acknowledged records are not read back."""
    spool = Spool(tmp_path / "a.spool")
    spool.open()
    spool.append([item(n) for n in range(5)])
    spool.ack(2)
    assert spool.peek(10) == [item(2), item(3), item(4)]
    spool.ack(3)
    assert spool.size == 0 and os.path.getsize(tmp_path / "a.spool") == 0
    with pytest.raises(ValueError, match="count"):
        spool.ack(1)
    spool.close()


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    """A half-written last line (a crash mid-append) and a damaged line are skipped and cut away."""
    path = tmp_path / "a.spool"
    spool = Spool(path)
    spool.open()
    spool.append([item(1), item(2)])
    spool.close()
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    damaged = lines[1].replace(b'"r2"', b'"r9"')  # checksum no longer matches
    path.write_bytes(lines[0] + damaged + b'0badc0de {"request_id": "r3"')
    again = Spool(path)
    again.open()
    assert again.peek(10) == [item(1)] and again.skipped == 2
    again.append([item(4)])
    again.close()
    third = Spool(path)
    third.open()
    assert third.peek(10) == [item(1), item(4)] and third.skipped == 0
    third.close()


def test_one_owner_per_file_and_directory_claims(tmp_path: Path) -> None:
    """A file is owned by one spool at a time; in a directory each spool claims its own file."""
    first = Spool(tmp_path)
    second = Spool(tmp_path)
    first.open()
    second.open()
    assert first.path != second.path
    with pytest.raises(SpoolLockedError):
        Spool(first.path or tmp_path).open()
    first.append([item(1)])
    first.close()
    third = Spool(tmp_path)  # a restarted worker takes over the file the first one left
    third.open()
    assert third.path == first.path and third.peek(1) == [item(1)]
    third.close()
    second.close()


def test_full_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When every file of the directory is held, claiming raises SpoolLockedError."""
    monkeypatch.setattr("asgi_kit.budget.spool.MAX_SPOOL_FILES", 1)
    first = Spool(tmp_path)
    first.open()
    with pytest.raises(SpoolLockedError, match="every spool file"):
        Spool(tmp_path).open()
    first.close()
    assert MAX_SPOOL_FILES > 1


def test_options_and_use_before_open(tmp_path: Path) -> None:
    """Bad options raise TypeError/ValueError naming them; appending before open() is an error."""
    with pytest.raises(TypeError, match="spool_path"):
        Spool(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_bytes"):
        Spool(tmp_path / "x", max_bytes=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_bytes"):
        Spool(tmp_path / "x", max_bytes=10)
    spool = Spool(tmp_path / "x")
    with pytest.raises(RuntimeError, match="open"):
        spool.append([item(1)])
    assert "count=0" in repr(spool)
    spool.open()
    spool.open()  # idempotent
    spool.append([])
    assert spool.is_open
    spool.close()
    assert not spool.is_open


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5)),
        st.tuples(st.just("ack"), st.integers(0, 6)),
        st.tuples(st.just("crash"), st.binary(max_size=40)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_replay_is_a_suffix_holding_every_unacknowledged_record(ops: list[tuple[str, Any]]) -> None:
    """After any sequence of appends, acks and crashes (with a torn tail), reopening yields, in
    order, every record not acknowledged, preceded at most by acknowledged ones (idempotent replays)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "p.spool"
        spool = Spool(path, max_bytes=1 << 20)
        spool.open()
        appended: list[dict[str, Any]] = []
        taken = 0  # records the sink has acknowledged: never needed again
        for op, arg in ops:
            if op == "append":
                batch = [item(len(appended) + i) for i in range(arg)]
                spool.append(batch)
                appended.extend(batch)
            elif op == "ack":
                spool.ack(min(arg, spool.count))
                taken = max(taken, len(appended) - spool.count)
            else:
                spool.close()
                if arg and b"\n" not in arg:
                    with path.open("ab") as torn:  # a crash in the middle of an append
                        torn.write(arg)
                spool = Spool(path, max_bytes=1 << 20)
                spool.open()
            read = spool.peek(10_000)
            assert read == appended[len(appended) - len(read) :]
            assert len(read) >= len(appended) - taken
        spool.close()
