"""Per-project approval of the servers a repository configures (`.mcp.json`, project settings).

A cloned repository can name any command as an MCP server, so such a server starts only after
the user approved it once for that project, as Claude Code does. The answer is remembered in
`$GODWIT_HOME/mcp-approvals.json`, keyed by the project root, together with a fingerprint of the
server's entry as written: if the repository later changes the command, it is asked about again.
Servers from the user's own settings and from `--mcp-config` need no approval.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from agent.mcp.config import ServerSpec

FILE = "mcp-approvals.json"
NEEDS_APPROVAL = {"project", "project-settings"}
Answer = Literal["approved", "denied", "unknown"]


def fingerprint(spec: ServerSpec) -> str:
    """A hash of the entry as written (before `${VAR}` expansion, so secrets are not hashed)."""
    text = json.dumps(spec.raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ApprovalStore:
    """The remembered answers, one JSON file under GODWIT_HOME."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILE

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def answer(self, project: Path, spec: ServerSpec) -> Answer:
        """What the user said about this server, as configured now, in this project."""
        if spec.source not in NEEDS_APPROVAL:
            return "approved"
        entry = self._load().get(str(Path(project).resolve()), {}).get(spec.name)
        if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint(spec):
            return "unknown"
        return "approved" if entry.get("approved") else "denied"

    def remember(self, project: Path, spec: ServerSpec, approved: bool) -> None:
        """Store the user's answer (atomically: two sessions may write at once)."""
        data = self._load()
        servers = data.setdefault(str(Path(project).resolve()), {})
        servers[spec.name] = {"approved": approved, "fingerprint": fingerprint(spec)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".mcp-approvals-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
