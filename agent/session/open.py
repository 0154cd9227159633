"""Opening a session: a new one, a resumed one (its log replayed), or a fork of an old one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent import events as ev
from agent.errors import UsageError
from agent.project import project_root
from agent.session.conversation import Conversation
from agent.session.index import find_session, latest_session, new_session_id, sessions_dir
from agent.session.log import PendingLog, ReadOnlyLog, SessionLog, read_log
from agent.session.recorder import Recorder


@dataclass
class OpenedSession:
    """A session log opened for appending, with its replayed state."""

    id: str
    path: Path
    log: SessionLog | ReadOnlyLog | PendingLog
    events: list[ev.Event]
    conversation: Conversation
    warnings: list[str]


def create_session(home: Path, cwd: Path, session_id: str | None = None) -> OpenedSession:
    """A new session; its log is written from the first prompt on (see PendingLog)."""
    sid = session_id or new_session_id()
    path = sessions_dir(home, cwd) / f"{sid}.jsonl"
    if path.exists():
        raise UsageError(f"Session {sid} already exists")
    return OpenedSession(sid, path, PendingLog(path), [], Conversation(), [])


def open_session(path: Path, *, readonly: bool = False) -> OpenedSession:
    """Replay a log for resuming; a torn tail is moved aside so appends start on a clean line.

    `readonly` only reads (listings, diffs): no lock, and the file is left exactly as it is."""
    contents = read_log(path)
    if readonly:
        conv = Conversation.from_events(contents.events)
        return OpenedSession(
            path.stem,
            path,
            ReadOnlyLog(path, len(contents.events)),
            contents.events,
            conv,
            contents.warnings,
        )
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


def open_for(
    home: Path,
    cwd: Path,
    *,
    resume: str | None = None,
    continue_latest: bool = False,
    fork: bool = False,
    readonly: bool = False,
) -> tuple[OpenedSession, str | None]:
    """The session to run in: new, resumed (`resume` id or the latest), or a fork of one;
    also returns the id of the session it was forked from. `readonly` only reads."""
    path = None
    if resume:
        path = find_session(home, resume, cwd)
    elif continue_latest:
        path = latest_session(home, cwd)
        if path is None:
            raise UsageError(
                f"No session to continue in {cwd}; start one with `godwit -p` or `godwit`."
            )
    if path is None:
        if readonly:
            raise UsageError(f"No session in {cwd} yet.")
        return create_session(home, cwd), None
    _check_project(path, cwd)
    if not fork:
        return open_session(path, readonly=readonly), None
    # A fork is a new session that starts with a copy of the old one's history.
    old = open_session(path, readonly=True)
    new = create_session(home, cwd)
    recorder = Recorder(new)
    for event in old.events:
        recorder.write(event.model_copy())
    new.log.sync()
    new.warnings.extend(old.warnings)
    return new, old.id


def _check_project(path: Path, cwd: Path) -> None:
    """A session belongs to the project (work tree) it was started in: its tools, checkpoints
    and conversation are about that tree, so resuming it elsewhere is refused."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        start = ev.parse_event(first)
    except ValueError:
        return  # an unreadable first line is reported by the full read that follows
    # Started anywhere in the same work tree is the same project (agent.project).
    if isinstance(start, ev.SessionStarted) and project_root(Path(start.cwd).resolve()) != cwd:
        raise UsageError(
            f"Session {path.stem} belongs to {start.cwd}; run from there or pass --cwd {start.cwd}."
        )
