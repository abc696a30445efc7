"""A local append-only spool: usage records that the sink could not take yet, kept on disk.

Each record is one line, ``<crc32 as 8 hex digits> <JSON object>\\n``, written and ``fsync``-ed
before :meth:`Spool.append` returns, so an acknowledged record survives a crash or a
``SIGKILL``. The file is bounded in bytes: an append that would pass ``max_bytes`` raises
:class:`LedgerFullError` and writes nothing.

After a crash the last line may be torn (no newline, or a checksum that does not match): it
is ignored. Records leave the spool only when the sink acknowledged them (:meth:`Spool.ack`);
the file is then rewritten without them (temporary file, ``fsync``, ``rename``, ``fsync`` of the
directory), so a crash at any point leaves either the old file or the new one. A record that
was acknowledged but not yet compacted away is replayed after a crash: the ledger's sinks are
idempotent by request id, so a replay never counts twice.

One process owns a spool file at a time (an exclusive ``flock`` on ``<file>.lock``). Given a
directory, a spool claims the first ``usage-<n>.spool`` that no live process holds, so the
workers of one server share a directory and a restarted worker takes over, and replays, what
a killed one left.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import zlib
from collections import deque
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Final

from asgi_kit._asgi.exceptions import AsgiKitError
from asgi_kit._asgi.options import check_instance, check_int

logger = logging.getLogger("asgi_kit.budget")

#: how many ``usage-<n>.spool`` files a directory may hold (one per live worker)
MAX_SPOOL_FILES: Final = 256
#: acknowledged bytes that trigger a rewrite of the file before it is empty
_COMPACT_BYTES: Final = 1 << 20


class LedgerFullError(AsgiKitError):
    """The spool is full: the records were not written (the ledger keeps them in memory and counts it)."""


class SpoolLockedError(AsgiKitError):
    """Another live process owns the spool file (or every file of the spool directory)."""


def _encode(item: dict[str, Any]) -> bytes:
    payload = json.dumps(item, separators=(",", ":"), sort_keys=True).encode()
    return b"%08x " % zlib.crc32(payload) + payload + b"\n"


def _decode(line: bytes) -> dict[str, Any] | None:
    """The object of a complete, intact line, or ``None``."""
    if len(line) < 10 or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    payload = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        item = json.loads(payload)
    except ValueError:
        return None
    return item if isinstance(item, dict) else None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path``, or ``None`` when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Spool:
    """A bounded, fsync-ed, append-only file of JSON objects with acknowledged removal.

    Args:
        path: the spool file, or a directory in which to claim one (see the module docstring).
        max_bytes: the file's size limit; an append past it raises :class:`LedgerFullError`.

    Not thread-safe: one event loop (or one thread) uses it. :meth:`open` reads what an
    earlier process left; :attr:`count` and :meth:`peek` then see those records first.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 64 << 20) -> None:
        check_instance("spool_path", path, (str, os.PathLike), "a str or a path")
        check_int("max_bytes", max_bytes, minimum=1024)
        self._requested = Path(path)
        self.max_bytes = max_bytes
        self.path: Path | None = None
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._items: deque[tuple[dict[str, Any], int]] = deque()
        self._size = 0  # bytes in the file, acknowledged ones included until compaction
        self._acked_bytes = 0
        #: lines skipped at open: a torn last line, or a damaged line
        self.skipped = 0
        #: appends refused because the spool was full
        self.full_errors = 0

    def __repr__(self) -> str:
        return f"Spool(path={str(self.path or self._requested)!r}, count={self.count}, bytes={self._size})"

    @property
    def count(self) -> int:
        """Records spooled and not acknowledged yet."""
        return len(self._items)

    @property
    def size(self) -> int:
        """Bytes the file holds now."""
        return self._size

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> None:
        """Claim the file, read the records an earlier process left, and get ready to append."""
        if self._fd is not None:
            return
        path, lock_fd = self._claim()
        try:
            items, good_bytes, skipped = self._read(path)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except BaseException:
            os.close(lock_fd)
            raise
        self.path, self._lock_fd, self._fd = path, lock_fd, fd
        self._items = deque(items)
        self._size = os.fstat(fd).st_size
        self._acked_bytes = 0
        self.skipped += skipped
        if skipped:
            logger.warning("usage spool %s: skipped %d damaged or torn line(s)", path, skipped)
        if self._size != good_bytes:
            # Drop the damaged bytes now, so new appends never follow a torn line.
            self._rewrite()

    def _claim(self) -> tuple[Path, int]:
        requested = self._requested
        if requested.is_dir():
            for index in range(MAX_SPOOL_FILES):
                candidate = requested / f"usage-{index}.spool"
                fd = _lock(candidate.with_name(candidate.name + ".lock"))
                if fd is not None:
                    return candidate, fd
            raise SpoolLockedError(f"every spool file of {requested} is held by a live process")
        requested.parent.mkdir(parents=True, exist_ok=True)
        fd = _lock(requested.with_name(requested.name + ".lock"))
        if fd is None:
            raise SpoolLockedError(f"{requested} is held by another live process")
        return requested, fd

    @staticmethod
    def _read(path: Path) -> tuple[list[tuple[dict[str, Any], int]], int, int]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return [], 0, 0
        items: list[tuple[dict[str, Any], int]] = []
        skipped = 0
        good = 0
        for line in data.splitlines(keepends=True):
            item = _decode(line)
            if item is None:
                skipped += 1
                continue
            items.append((item, len(line)))
            good += len(line)
        return items, good, skipped

    def append(self, items: Sequence[dict[str, Any]]) -> None:
        """Write ``items`` at the end and ``fsync``; all of them or none.

        Raises:
            LedgerFullError: the file would pass ``max_bytes`` (nothing was written).
        """
        fd = self._require_open()
        if not items:
            return
        lines = [_encode(item) for item in items]
        data = b"".join(lines)
        if self._size + len(data) > self.max_bytes and self._acked_bytes:
            self._rewrite()
        if self._size + len(data) > self.max_bytes:
            self.full_errors += 1
            raise LedgerFullError(
                f"usage spool full: {self._size} of {self.max_bytes} bytes used, {len(data)} more needed"
            )
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            # A partial write would leave a torn line in the middle: cut the file back.
            os.ftruncate(fd, self._size)
            raise
        self._size += len(data)
        self._items.extend(zip(items, map(len, lines), strict=True))

    def fit(self, items: Sequence[dict[str, Any]]) -> int:
        """How many of the first ``items`` :meth:`append` would take now (acknowledged bytes
        count as free: they are compacted away first)."""
        room = self.max_bytes - (self._size - self._acked_bytes)
        taken = 0
        for item in items:
            room -= len(_encode(item))
            if room < 0:
                break
            taken += 1
        return taken

    def peek(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` records not acknowledged yet, oldest first."""
        return [item for item, _ in islice(self._items, limit)]

    def ack(self, count: int) -> None:
        """Remove the first ``count`` records: the sink has them."""
        self._require_open()
        if count < 0 or count > len(self._items):
            raise ValueError(f"count must be between 0 and {len(self._items)}")
        for _ in range(count):
            _, size = self._items.popleft()
            self._acked_bytes += size
        if not self._items or self._acked_bytes >= _COMPACT_BYTES:
            self._rewrite()

    def _rewrite(self) -> None:
        """Replace the file by the unacknowledged records: temporary file, fsync, rename, fsync dir."""
        path = self.path
        if path is None or self._fd is None:  # pragma: no cover - callers hold an open spool
            raise RuntimeError("spool is not open")
        data = b"".join(_encode(item) for item, _ in self._items)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
        os.close(self._fd)
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND, 0o600)
        self._size = len(data)
        self._acked_bytes = 0

    def close(self) -> None:
        """Release the file and its lock; the records stay on disk for the next process."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _require_open(self) -> int:
        if self._fd is None:
            raise RuntimeError("the spool is not open: call open() first")
        return self._fd


__all__ = ["MAX_SPOOL_FILES", "LedgerFullError", "Spool", "SpoolLockedError"]
