"""Sessions: an append-only JSONL event log per session, grouped by project.

A line is written for every event as it happens and the file is fsynced at turn boundaries and
after every tool result, so a crash loses at most the turn in flight. Reading tolerates exactly
one kind of damage silently-but-loudly: a torn last line (a crash mid-write) is skipped with a
warning and set aside; anything else is reported with its line number.
"""

from __future__ import annotations

import hashlib
import os
import re
import fcntl
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from agent import events as ev
from agent.conversation import Conversation
from agent.errors import SessionError, UsageError


def godwit_home() -> Path:
    """`GODWIT_HOME`, default `~/.godwit`."""
    return Path(os.environ.get("GODWIT_HOME") or Path.home() / ".godwit")


def project_key(cwd: Path) -> str:
    """A readable, collision-free folder name for a project directory."""
    path = str(Path(cwd).resolve())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).name).strip("-")[:40] or "root"
    return f"{slug}-{hashlib.sha256(path.encode()).hexdigest()[:10]}"


def new_session_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def sessions_dir(home: Path, cwd: Path) -> Path:
    return home / "sessions" / project_key(cwd)


@dataclass
class LogContents:
    events: list[ev._Event]
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

    def append(self, event: ev._Event, *, sync: bool = False) -> None:
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
                self._thread = threading.Thread(target=self._syncer, name="godwit-log-sync",
                                                daemon=True)
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

    def append(self, event: ev._Event, *, sync: bool = False) -> None:
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
        raise UsageError(f"Session {path.stem} is in use by another godwit process (pid "
                         f"{holder}); wait for it to finish, or continue it as a new session "
                         "with --fork.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _summary(path: Path) -> dict:
    contents = read_log(path)
    first_prompt = ""
    turns = 0
    start = last = None
    model = ""
    for event in contents.events:
        start = start or event.ts
        last = event.ts
        if isinstance(event, ev.SessionStarted):
            model = event.model
        if isinstance(event, ev.UserMessage):
            turns = max(turns, event.turn)
            first_prompt = first_prompt or event.text
    return {
        "id": path.stem,
        "created": start,
        "last_activity": last,
        "turns": turns,
        "model": model,
        "first_prompt": first_prompt.splitlines()[0][:120] if first_prompt else "",
        "path": str(path),
    }


def list_sessions(home: Path, cwd: Path | None = None) -> list[dict]:
    """Sessions of one project (or all), newest activity first."""
    root = home / "sessions"
    dirs = [sessions_dir(home, cwd)] if cwd is not None else sorted(root.glob("*"))
    rows = []
    for d in dirs:
        for path in d.glob("*.jsonl"):
            try:
                rows.append(_summary(path))
            except (SessionError, OSError) as exc:
                rows.append({"id": path.stem, "created": None, "last_activity": None,
                             "turns": 0, "model": "", "first_prompt": f"(unreadable: {exc})",
                             "path": str(path)})
    rows.sort(key=lambda r: r["last_activity"] or "", reverse=True)
    return rows


def find_session(home: Path, session_id: str, cwd: Path | None = None) -> Path:
    """The log of `session_id` (a unique prefix is enough), this project first."""
    candidates: list[Path] = []
    if cwd is not None:
        candidates = list(sessions_dir(home, cwd).glob(f"{session_id}*.jsonl"))
    if not candidates:
        candidates = list((home / "sessions").glob(f"*/{session_id}*.jsonl"))
    exact = [p for p in candidates if p.stem == session_id]
    if exact:
        return exact[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"No session {session_id!r} under {home / 'sessions'}. "
                         "`godwit sessions` lists them.")
    raise UsageError(f"Session id {session_id!r} is ambiguous: "
                     + ", ".join(sorted(p.stem for p in candidates)))


def latest_session(home: Path, cwd: Path) -> Path | None:
    """The project's session with the newest activity, if any."""
    logs = list(sessions_dir(home, cwd).glob("*.jsonl"))
    if not logs:
        return None
    return max(logs, key=lambda p: p.stat().st_mtime_ns)


@dataclass
class OpenedSession:
    """A session log opened for appending, with its replayed state."""

    id: str
    path: Path
    log: SessionLog | ReadOnlyLog
    events: list[ev._Event]
    conversation: Conversation
    warnings: list[str]


def create_session(home: Path, cwd: Path, session_id: str | None = None) -> OpenedSession:
    sid = session_id or new_session_id()
    path = sessions_dir(home, cwd) / f"{sid}.jsonl"
    if path.exists():
        raise UsageError(f"Session {sid} already exists")
    return OpenedSession(sid, path, SessionLog(path), [], Conversation(), [])


def open_session(path: Path, *, readonly: bool = False) -> OpenedSession:
    """Replay a log for resuming; a torn tail is moved aside so appends start on a clean line.

    `readonly` only reads (listings, diffs): no lock, and the file is left exactly as it is."""
    contents = read_log(path)
    if readonly:
        conv = Conversation.from_events(contents.events)
        return OpenedSession(path.stem, path, ReadOnlyLog(path, len(contents.events)),
                             contents.events, conv, contents.warnings)
    log = SessionLog(path, next_seq=len(contents.events))
    # Read again under the lock: another writer may have finished a line meanwhile.
    contents = read_log(path)
    log.next_seq = len(contents.events)
    size = path.stat().st_size
    if contents.good_bytes < size:
        torn = path.with_suffix(".jsonl.torn")
        with open(path, "rb") as f:
            f.seek(contents.good_bytes)
            tail = f.read()
        with open(torn, "ab") as f:
            f.write(tail + b"\n")
        os.truncate(path, contents.good_bytes)
    if contents.good_bytes and not _ends_with_newline(path):
        # The last event parsed but its newline never made it to disk.
        with open(path, "ab") as f:
            f.write(b"\n")
    conv = Conversation.from_events(contents.events)
    return OpenedSession(path.stem, path, log, contents.events, conv, contents.warnings)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
