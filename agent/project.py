"""The project a session belongs to, and the instruction files read into its system prompt.

The project root is the enclosing git work tree of the folder the user is in (else that folder):
one checkpoint store and one session list per repository, wherever in it Godwit starts. The
instruction files are read as Claude Code and Codex read theirs: a user-level file in
`$GODWIT_HOME`, then the one of each folder from the root down to the current one, the more
specific later (so they win where they disagree). A folder's file is its `AGENTS.md`, or its
`CLAUDE.md` when it has none: many repositories keep both with the same text (often one links
to the other), and the model should read it once.
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
    """The user-level file in `home`, then each folder's file from `root` down to `cwd` (which
    must be `root` or inside it; otherwise only `root`'s is read)."""
    found: list[InstructionFile] = []
    if home is not None:
        picked = _pick(home)
        if picked:
            found.append(
                InstructionFile(picked[0], f"$GODWIT_HOME/{picked[0].name} (yours)", picked[1])
            )
    folders = [root]
    try:
        for part in cwd.relative_to(root).parts:
            folders.append(folders[-1] / part)
    except ValueError:
        pass
    for folder in folders:
        picked = _pick(folder)
        if picked:
            found.append(
                InstructionFile(picked[0], picked[0].relative_to(root).as_posix(), picked[1])
            )
    return found


def _pick(folder: Path) -> tuple[Path, str] | None:
    for name in INSTRUCTION_NAMES:
        text = _read(folder / name)
        if text is not None:
            return folder / name, text
    return None
