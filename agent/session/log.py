"""The session log: an append-only JSONL file of events, one per session.

A line is written for every event as it happens and the file is fsynced at turn boundaries and
after every tool result, so a crash loses at most the turn in flight. Reading tolerates exactly
one kind of damage silently-but-loudly: a torn last line (a crash mid-write) is skipped with a
warning and set aside; anything else is reported with its line number.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from agent import events as ev
from agent.errors import SessionError, UsageError


@dataclass
class LogContents:
    events: list[ev.Event]
    warnings: list[str] = field(default_factory=list)
    # Byte length of the well-formed prefix (where appending must resume).
    good_bytes: int = 0


def read_log(path: Path) -> LogContents:
    """Parse a session log. A torn last line is skipped with a warning; other damage raises."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ended with a newline, as a complete log does
    out = LogContents(events=[])
    offset = 0
    for number, raw in enumerate(lines, start=1):
        try:
            event = ev.parse_event(raw)
        except (ValidationError, ValueError) as exc:
            if number == len(lines):
                out.warnings.append(
                    f"{path.name}: line {number} is incomplete or corrupt (a crash while "
                    f"writing?) and was skipped: {_brief(raw)}"
                )
                break
            raise SessionError(
                f"{path}: line {number} is corrupt: {_first_error(exc)}. The log was not "
                "changed; repair or remove that line to resume this session."
            ) from exc
        event.seq = len(out.events)
        out.events.append(event)
        offset += len(raw) + 1
    out.good_bytes = min(offset, len(data))
    return out


def _brief(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= 80 else text[:77] + "..."


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()
        if errs:
            return errs[0]["msg"]
    return str(exc)


class SessionLog:
    """Appends events to one JSONL file, assigning each its `seq`.

    Every line is written at once (so a killed process loses at most the line in flight).
    `sync()` asks for the data to reach the disk; the fsync runs on a background thread so
    the loop does not wait on the disk for each tool result, and `wait_durable()` (at the end
    of a turn and on close) blocks until everything written so far is on disk.
    """

    def __init__(self, path: Path, next_seq: int = 0) -> None:
        self.path = path
        self.next_seq = next_seq
        path.parent.mkdir(parents=True, exist_ok=True)
        # One writer per session: a second process appending would interleave two histories.
        self._lock_fd = _lock(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._written = 0  # lines written
        self._synced = 0  # lines known to be on disk
        self._wanted = 0  # lines a sync was asked for
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def append(self, event: ev.Event, *, sync: bool = False) -> None:
        if event.ephemeral:
            return
        event.seq = self.next_seq
        line = (ev.dump_event(event) + "\n").encode()
        written = 0
        while written < len(line):
            written += os.write(self._fd, line[written:])
        self.next_seq += 1
        with self._cond:
            self._written += 1
        if sync:
            self.sync()

    def sync(self) -> None:
        """Have everything written so far fsynced soon (returns at once)."""
        with self._cond:
            self._wanted = self._written
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._syncer, name="godwit-log-sync", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait_durable(self) -> None:
        """Block until every line written so far is on disk."""
        self.sync()
        with self._cond:
            while self._synced < self._wanted and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise SessionError(f"Cannot write the session log {self.path}: {self._error}")

    def _syncer(self) -> None:
        while True:
            with self._cond:
                while self._wanted <= self._synced and self._fd >= 0:
                    self._cond.wait()
                if self._fd < 0:
                    return
                target = self._wanted
                fd = self._fd
            try:
                os.fsync(fd)
            except OSError as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._synced = max(self._synced, target)
                self._cond.notify_all()

    def close(self) -> None:
        if self._fd >= 0:
            self.wait_durable()
            with self._cond:
                fd, self._fd = self._fd, -1
                self._cond.notify_all()
            os.close(fd)
            os.close(self._lock_fd)  # releases the session lock


class ReadOnlyLog:
    """Stands in for the log of a session opened to look at (listings, diffs): never writes."""

    def __init__(self, path: Path, next_seq: int) -> None:
        self.path = path
        self.next_seq = next_seq

    def append(self, event: ev.Event, *, sync: bool = False) -> None:
        raise UsageError(f"Session {self.path.stem} was opened read-only")

    def sync(self) -> None:
        pass

    def wait_durable(self) -> None:
        pass

    def close(self) -> None:
        pass


def _lock(path: Path) -> int:
    """Hold `ID.lock` beside the log (released when the process ends, even by kill -9)."""
    lock_path = path.with_suffix(".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UsageError(
            f"Session {path.stem} is in use by another godwit process (pid "
            f"{holder}); wait for it to finish, or continue it as a new session "
            "with --fork."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class PendingLog:
    """The log of a new session: its events wait in memory until the first prompt, and only
    then do the file and its lock appear. Opening Godwit and quitting, or a start that fails
    (no API key), so leaves nothing behind for `--continue` or the listings to trip on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.next_seq = 0
        self._waiting: list[ev.Event] = []
        self._log: SessionLog | None = None

    @property
    def written(self) -> bool:
        """Whether the session is on disk (a prompt was sent)."""
        return self._log is not None

    def append(self, event: ev.Event, *, sync: bool = False) -> None:
        if event.ephemeral:
            return
        if self._log is None:
            event.seq = self.next_seq
            self.next_seq += 1
            self._waiting.append(event)
            if not isinstance(event, ev.UserMessage):
                return
            self._log = SessionLog(self.path)
            for waiting in self._waiting:
                self._log.append(waiting)
            self._waiting.clear()
            if sync:
                self._log.sync()
            return
        self._log.append(event, sync=sync)
        self.next_seq = self._log.next_seq

    def sync(self) -> None:
        if self._log is not None:
            self._log.sync()

    def wait_durable(self) -> None:
        if self._log is not None:
            self._log.wait_durable()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
