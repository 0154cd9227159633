"""What a repository's own settings may run: its shell hooks, the `env` it sets for tools and
hooks, and a `base_url` (where the API key goes) take effect only after the user approved them
once for that project.

A cloned repository's `.godwit/settings.json` (or `settings.local.json`) can name any command as
a hook, and an `env` (`PATH`, `BASH_ENV`, `LD_PRELOAD`, ...) that changes what the tools run.
Both would run code without any approval the moment a session starts, so they are held back
until the user says yes: in the terminal (asked once, before the session starts) or with
`godwit trust` in the project. The answer is remembered in `$GODWIT_HOME/project-trust.json`,
keyed by the project root, with a fingerprint of what was approved: when the repository changes
its hooks or env, it is asked again. The user's own settings, `--settings` and the flags need no
approval.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

FILE = "project-trust.json"
Answer = Literal["approved", "denied", "unknown"]


def fingerprint(held: dict[str, Any]) -> str:
    """A hash of the held-back settings as written."""
    return hashlib.sha256(json.dumps(held, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe(held: dict[str, Any]) -> str:
    """What the project's settings would run, for the question put to the user."""
    lines = []
    for event, matchers in (held.get("hooks") or {}).items():
        for matcher in matchers if isinstance(matchers, list) else []:
            hooks = matcher.get("hooks", []) if isinstance(matcher, dict) else []
            for hook in hooks if isinstance(hooks, list) else []:
                command = hook.get("command") if isinstance(hook, dict) else None
                lines.append(f"  hook {event}: {command}")
    for name, value in (held.get("env") or {}).items():
        lines.append(f"  env {name}={value}")
    if held.get("base_url"):
        lines.append(f"  base_url {held['base_url']} (your API key is sent there)")
    return "\n".join(lines)


class AnswerFile:
    """Remembered answers of the user, one JSON object in a file under GODWIT_HOME, written
    atomically (two sessions may write at once). Also the store of MCP server approvals."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


class ProjectTrust:
    """The user's answers about each project's held-back settings."""

    def __init__(self, home: Path) -> None:
        self.file = AnswerFile(Path(home) / FILE)

    def answer(self, project: Path, held: dict[str, Any]) -> Answer:
        entry = self.file.load().get(str(Path(project).resolve()))
        if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint(held):
            return "unknown"
        return "approved" if entry.get("approved") else "denied"

    def remember(self, project: Path, held: dict[str, Any], approved: bool) -> None:
        data = self.file.load()
        data[str(Path(project).resolve())] = {
            "approved": approved,
            "fingerprint": fingerprint(held),
        }
        self.file.save(data)


def admit(
    held: dict[str, Any],
    home: Path,
    project: Path,
    ask: Callable[[str], bool] | None,
) -> tuple[bool, str | None]:
    """(whether the project's hooks and env may take effect, a warning to show or None).
    `ask` puts the question to the user (None: headless, nobody to ask)."""
    if not held:
        return True, None
    trust = ProjectTrust(home)
    answer = trust.answer(project, held)
    if answer == "unknown" and ask is not None:
        approved = bool(ask(describe(held)))
        trust.remember(project, held, approved)
        answer = "approved" if approved else "denied"
    if answer == "approved":
        return True, None
    what = ", ".join(k for k in ("hooks", "env", "base_url") if held.get(k))
    return False, (
        f"this project's settings set {what}, which run only once you approve them "
        "(`godwit trust` in the project, or answer yes when the terminal UI asks); "
        "they are ignored for now"
    )
