"""The index of sessions: where each project's logs live, listing them, finding one by id."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from agent import events as ev
from agent.errors import SessionError, UsageError
from agent.session.log import read_log
from checkpoints.project import project_folder


def godwit_home() -> Path:
    """`GODWIT_HOME`, default `~/.godwit`."""
    return Path(os.environ.get("GODWIT_HOME") or Path.home() / ".godwit")


def project_key(cwd: Path) -> str:
    """A readable, collision-free folder name for a project directory (under sessions/)."""
    return project_folder(Path(cwd), digest_chars=10)


def new_session_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def sessions_dir(home: Path, cwd: Path) -> Path:
    return home / "sessions" / project_key(cwd)


def _summary(path: Path) -> dict:
    contents = read_log(path)
    first_prompt = ""
    turns = 0
    start = last = None
    model = cwd = ""
    for event in contents.events:
        start = start or event.ts
        last = event.ts
        if isinstance(event, ev.SessionStarted):
            model, cwd = event.model, event.cwd
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
        "cwd": cwd,
        "path": str(path),
    }


def list_sessions(home: Path, cwd: Path | None = None) -> list[dict]:
    """Sessions of one project (or all), newest activity first.

    A log in which no prompt was ever sent (left by an older version, or by a start that
    failed) is not a session anyone can continue: it is left out."""
    root = home / "sessions"
    dirs = [sessions_dir(home, cwd)] if cwd is not None else sorted(root.glob("*"))
    rows = []
    for d in dirs:
        for path in d.glob("*.jsonl"):
            if not has_turns(path):
                continue
            try:
                rows.append(_summary(path))
            except (SessionError, OSError) as exc:
                rows.append(
                    {
                        "id": path.stem,
                        "created": None,
                        "last_activity": None,
                        "turns": 0,
                        "model": "",
                        "first_prompt": f"(unreadable: {exc})",
                        "cwd": "",
                        "path": str(path),
                    }
                )
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
        raise UsageError(
            f"No session {session_id!r} under {home / 'sessions'}. `godwit sessions` lists them."
        )
    raise UsageError(
        f"Session id {session_id!r} is ambiguous: " + ", ".join(sorted(p.stem for p in candidates))
    )


def has_turns(path: Path) -> bool:
    """Whether a prompt was ever sent in the session logged at `path` (a byte search, not a
    parse: listings call it for every log)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return b'"type":"user"' in data


def latest_session(home: Path, cwd: Path) -> Path | None:
    """The project's session with the newest activity in which a prompt was sent, if any."""
    logs = []
    for path in sessions_dir(home, cwd).glob("*.jsonl"):
        try:
            logs.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    for _, path in sorted(logs, reverse=True):
        if has_turns(path):
            return path
    return None
