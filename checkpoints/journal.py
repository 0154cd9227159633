"""Durable small files of the store: atomic JSON writes, the restore journal, the lock.

The journal is written (and fsynced, file and directory) before a restore touches the work
tree, and removed after the store's state says the restore is done. Its presence means "a
restore to `target` was started and may be half done"; the next public call finishes it.

The lock is `fcntl.flock` on `<store>/lock`: the kernel releases it when its holder dies, even
by SIGKILL, so a stale lock cannot outlive its process. Who holds it (pid, session, operation,
since when) is written beside it in `lock.owner`, for the error message of the one that waits.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from .errors import RestoreLocked


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, obj, *, durable: bool = True) -> None:
    """Replace `path` with `obj` as JSON, atomically (and durably: fsync file and directory)."""
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(obj, indent=1, sort_keys=True).encode()
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return default


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Journal:
    """`journal.json`: the restore in flight, if any."""

    def __init__(self, store_dir: Path):
        self.path = store_dir / "journal.json"

    def begin(self, entry: dict) -> None:
        write_json(self.path, entry)

    def pending(self) -> dict | None:
        return read_json(self.path)

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.path.parent)


class StoreLock:
    """An exclusive, re-entrant (within one object) lock on the store.

    `acquire(wait=0)` fails at once with RestoreLocked when another process (or another
    CheckpointStore object) holds it; `wait=N` polls for up to N seconds first.
    """

    def __init__(self, store_dir: Path):
        self.path = store_dir / "lock"
        self.owner_path = store_dir / "lock.owner"
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        return self._depth > 0

    @property
    def outermost(self) -> bool:
        """True inside the outermost acquire (not a nested, re-entrant one)."""
        return self._depth == 1

    def acquire(self, *, op: str, session_id: str | None, wait: float = 0.0) -> None:
        if self._depth:
            self._depth += 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RestoreLocked(str(self.path.parent), read_json(self.owner_path, {}))
                time.sleep(0.02)
        self._fd = fd
        self._depth = 1
        write_json(
            self.owner_path,
            {"pid": os.getpid(), "session_id": session_id, "op": op, "since": now_iso()},
            durable=False,
        )

    def release(self) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        try:
            self.owner_path.unlink()
        except FileNotFoundError:
            pass
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def is_held_elsewhere(self) -> bool:
        """True when some other holder has the lock now (probe without keeping it)."""
        if self._depth:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we may have taken
        return False
