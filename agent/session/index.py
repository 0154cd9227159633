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
                rows.append(
                    {
                        "id": path.stem,
                        "created": None,
                        "last_activity": None,
                        "turns": 0,
                        "model": "",
                        "first_prompt": f"(unreadable: {exc})",
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


def latest_session(home: Path, cwd: Path) -> Path | None:
    """The project's session with the newest activity, if any."""
    logs = list(sessions_dir(home, cwd).glob("*.jsonl"))
    if not logs:
        return None
    return max(logs, key=lambda p: p.stat().st_mtime_ns)
