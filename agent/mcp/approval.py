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
from pathlib import Path

from agent.mcp.config import ServerSpec
from agent.project_trust import Answer, AnswerFile

FILE = "mcp-approvals.json"
NEEDS_APPROVAL = {"project", "project-settings"}


def fingerprint(spec: ServerSpec) -> str:
    """A hash of the entry as written (before `${VAR}` expansion, so secrets are not hashed)."""
    text = json.dumps(spec.raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ApprovalStore:
    """The remembered answers, one JSON file under GODWIT_HOME."""

    def __init__(self, home: Path) -> None:
        self.file = AnswerFile(Path(home) / FILE)
        self.path = self.file.path

    def answer(self, project: Path, spec: ServerSpec) -> Answer:
        """What the user said about this server, as configured now, in this project."""
        if spec.source not in NEEDS_APPROVAL:
            return "approved"
        entry = self.file.load().get(str(Path(project).resolve()), {}).get(spec.name)
        if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint(spec):
            return "unknown"
        return "approved" if entry.get("approved") else "denied"

    def remember(self, project: Path, spec: ServerSpec, approved: bool) -> None:
        """Store the user's answer."""
        data = self.file.load()
        servers = data.setdefault(str(Path(project).resolve()), {})
        servers[spec.name] = {"approved": approved, "fingerprint": fingerprint(spec)}
        self.file.save(data)
