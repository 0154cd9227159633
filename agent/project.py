"""The project a session belongs to, and the instruction files read into its system prompt.

The project root is the enclosing git work tree of the folder the user is in (else that folder):
one checkpoint store and one session list per repository, wherever in it Godwit starts. The
instruction files are read as Claude Code and Codex read theirs: a user-level file in
`$GODWIT_HOME`, then `AGENTS.md` and `CLAUDE.md` in the root and in every folder down to the
current one, the more specific later (so they win where they disagree).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INSTRUCTION_NAMES = ("AGENTS.md", "CLAUDE.md")
# A repository's file is hostile input: a huge one must not fill the context window.
MAX_INSTRUCTION_BYTES = 64 * 1024


def project_root(cwd: Path) -> Path:
    """The closest folder at or above `cwd` holding `.git` (a folder, or a file for worktrees
    and submodules), else `cwd` itself. `cwd` should be resolved."""
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder
    return cwd


@dataclass(frozen=True)
class InstructionFile:
    """One instruction file: where it is, how the prompt names it, and its text."""

    path: Path
    label: str
    text: str


def _read(path: Path) -> str | None:
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            data = f.read(MAX_INSTRUCTION_BYTES + 1)
    except OSError:
        return None
    text = data[:MAX_INSTRUCTION_BYTES].decode("utf-8", errors="replace")
    if len(data) > MAX_INSTRUCTION_BYTES:
        text += f"\n[... cut at {MAX_INSTRUCTION_BYTES // 1024} KiB]"
    return text if text.strip() else None


def instruction_files(root: Path, cwd: Path, home: Path | None) -> list[InstructionFile]:
    """The user-level file(s) in `home`, then AGENTS.md and CLAUDE.md from `root` down to
    `cwd` (which must be `root` or inside it; otherwise only `root`'s are read)."""
    found: list[InstructionFile] = []
    if home is not None:
        for name in INSTRUCTION_NAMES:
            text = _read(home / name)
            if text is not None:
                found.append(InstructionFile(home / name, f"~godwit/{name} (user)", text))
    folders = [root]
    try:
        for part in cwd.relative_to(root).parts:
            folders.append(folders[-1] / part)
    except ValueError:
        pass
    for folder in folders:
        for name in INSTRUCTION_NAMES:
            text = _read(folder / name)
            if text is not None:
                rel = (folder / name).relative_to(root).as_posix()
                found.append(InstructionFile(folder / name, rel, text))
    return found
