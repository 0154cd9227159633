"""The project a session belongs to, and the instruction files read into its system prompt.

The project root is the enclosing git work tree of the folder the user is in (else that folder):
one checkpoint store and one session list per repository, wherever in it Godwit starts. The
instruction files are read as Claude Code and Codex read theirs: a user-level file in
`$GODWIT_HOME`, then the one of each folder from the root down to the current one, the more
specific later (so they win where they disagree). A folder's files are its `AGENTS.md` and its
`CLAUDE.md`, both read. Many repositories keep the two with the same text, one a link to the
other, or a `CLAUDE.md` that only imports the other (`@AGENTS.md`, Claude Code's import form);
such a copy is read once, so the model does not see the same instructions twice.
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
        for path, text in _pick(home):
            found.append(InstructionFile(path, f"$GODWIT_HOME/{path.name} (yours)", text))
    folders = [root]
    try:
        for part in cwd.relative_to(root).parts:
            folders.append(folders[-1] / part)
    except ValueError:
        pass
    for folder in folders:
        for path, text in _pick(folder):
            found.append(InstructionFile(path, path.relative_to(root).as_posix(), text))
    return found


def _pick(folder: Path) -> list[tuple[Path, str]]:
    """The folder's instruction files, leaving out one that repeats another already picked."""
    picked: list[tuple[Path, str]] = []
    for name in INSTRUCTION_NAMES:
        path = folder / name
        text = _read(path)
        if text is None or any(_same(path, text, p, t) for p, t in picked):
            continue
        picked.append((path, text))
    return picked


def _same(path: Path, text: str, other: Path, other_text: str) -> bool:
    """Whether `path` adds nothing to `other`: a link to it, the same text, or only import
    lines (`@AGENTS.md`) naming it."""
    try:
        if path.resolve() == other.resolve():
            return True
    except OSError:
        return False
    if text.strip() == other_text.strip():
        return True
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line in (f"@{other.name}", f"@./{other.name}") for line in lines)
