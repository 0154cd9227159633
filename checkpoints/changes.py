"""Differences between two states (tree + extras): per-file status, line counts, text patch."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .gitenv import ShadowGit
from .models import FileChange

_STATUS = {"A": "added", "D": "deleted", "M": "modified", "T": "type"}


@dataclass
class RawChange:
    """One line of `git diff-tree --raw`: a path whose entry differs between two trees."""

    path: bytes
    status: str  # A, D, M, T
    old_mode: int
    new_mode: int
    old_sha: str
    new_sha: str


def raw_diff(
    git: ShadowGit, old_tree: str, new_tree: str, *, numstat: bool = False
) -> tuple[list[RawChange], dict[str, tuple[str, str]]]:
    """Every path whose blob, git mode or type differs between the two trees, and (if asked)
    the added/deleted line counts from the same `git diff-tree` run ("-" for binary files)."""
    if old_tree == new_tree:
        return [], {}
    args = ["diff-tree", "-r", "-z", "--no-renames", "--raw"]
    if numstat:
        args.append("--numstat")
    parts = git.run([*args, old_tree, new_tree]).split(b"\0")
    changes = []
    counts: dict[str, tuple[str, str]] = {}
    i = 0
    # --raw records come first (":modes shas status" NUL path NUL), then "added TAB deleted TAB
    # path" NUL records.
    while i < len(parts) - 1 and parts[i].startswith(b":"):
        old_mode, new_mode, old_sha, new_sha, status = parts[i][1:].decode().split(" ")
        changes.append(
            RawChange(parts[i + 1], status[0], int(old_mode, 8), int(new_mode, 8), old_sha, new_sha)
        )
        i += 2
    for rec in parts[i:]:
        if rec:
            added, deleted, path = rec.split(b"\t", 2)
            counts[os.fsdecode(path)] = (added.decode(), deleted.decode())
    return changes, counts


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _full_mode(git_mode: int, perm: int | None) -> str:
    if git_mode == 0o120000:
        return "120000"
    return f"{0o100000 | (perm if perm is not None else git_mode & 0o7777):o}"


def perm_for(extras: dict, path: str, git_mode: int) -> int:
    """The permission bits a regular file has in a state."""
    p = extras["modes"].get(path)
    if p is not None:
        return p
    return extras["exec_mode"] if git_mode & 0o100 else extras["file_mode"]


def file_changes(
    git: ShadowGit,
    old_tree: str,
    old_extras: dict,
    new_tree: str,
    new_extras: dict,
    raw: list[RawChange] | None = None,
    tree_modes=None,
) -> list[FileChange]:
    """What differs from the old state to the new one, permission bits and empty dirs included.

    `tree_modes(tree, paths)` returns {path: git mode} for paths of a tree; it is only needed
    when permission bits changed on files whose content did not.
    """
    raw = raw_diff(git, old_tree, new_tree)[0] if raw is None else raw
    changes: list[FileChange] = []
    seen: set[str] = set()
    for r in raw:
        path = os.fsdecode(r.path)
        seen.add(path)
        old_perm = perm_for(old_extras, path, r.old_mode) if r.old_mode else None
        new_perm = perm_for(new_extras, path, r.new_mode) if r.new_mode else None
        status = _STATUS[r.status]
        if status == "modified" and r.old_sha == r.new_sha:
            status = "mode"
        changes.append(
            FileChange(
                path=path,
                status=status,
                kind="symlink" if (r.new_mode or r.old_mode) == 0o120000 else "file",
                old_mode=_full_mode(r.old_mode, old_perm) if r.old_mode else None,
                new_mode=_full_mode(r.new_mode, new_perm) if r.new_mode else None,
            )
        )
    # Permission bits git does not keep (0600, 0444, ...), on files whose blob did not change.
    candidates = (set(old_extras["modes"]) | set(new_extras["modes"])) - seen
    if (old_extras["file_mode"], old_extras["exec_mode"]) != (
        new_extras["file_mode"],
        new_extras["exec_mode"],
    ):
        candidates = None  # every file may differ
    modes_new = tree_modes(new_tree, candidates) if tree_modes else {}
    modes_old = tree_modes(old_tree, candidates) if tree_modes else {}
    for path in sorted(modes_new):
        if path in seen or path not in modes_old:
            continue
        gm_new, gm_old = modes_new[path], modes_old[path]
        if gm_new == 0o120000 or gm_old == 0o120000:
            continue
        a, b = perm_for(old_extras, path, gm_old), perm_for(new_extras, path, gm_new)
        if a != b:
            changes.append(
                FileChange(
                    path=path,
                    status="mode",
                    old_mode=_full_mode(gm_old, a),
                    new_mode=_full_mode(gm_new, b),
                )
            )
    old_dirs, new_dirs = old_extras["empty_dirs"], new_extras["empty_dirs"]
    # An empty directory that gains (or loses) files is not itself added or deleted.
    filled = {p for r in raw if r.new_mode for p in _parents(os.fsdecode(r.path))}
    emptied = {p for r in raw if r.old_mode for p in _parents(os.fsdecode(r.path))}
    for d in sorted(set(old_dirs) | set(new_dirs)):
        if (d in old_dirs and d not in new_dirs and d in filled) or (
            d in new_dirs and d not in old_dirs and d in emptied
        ):
            continue
        if d in old_dirs and d in new_dirs:
            if old_dirs[d] != new_dirs[d]:
                changes.append(
                    FileChange(
                        path=d,
                        status="mode",
                        kind="dir",
                        old_mode=f"{0o40000 | old_dirs[d]:o}",
                        new_mode=f"{0o40000 | new_dirs[d]:o}",
                    )
                )
        elif d in new_dirs:
            changes.append(
                FileChange(
                    path=d, status="added", kind="dir", new_mode=f"{0o40000 | new_dirs[d]:o}"
                )
            )
        else:
            changes.append(
                FileChange(
                    path=d, status="deleted", kind="dir", old_mode=f"{0o40000 | old_dirs[d]:o}"
                )
            )
    changes.sort(key=lambda c: c.path)
    return changes


def add_line_counts(changes: list[FileChange], counts: dict[str, tuple[str, str]]) -> None:
    """Fill added/deleted line counts (and the binary flag) from `raw_diff(numstat=True)`."""
    for c in changes:
        if c.kind != "file" or c.path not in counts:
            continue
        a, d = counts[c.path]
        if a == "-":
            c.binary = True
        else:
            c.added_lines, c.deleted_lines = int(a), int(d)


def add_patches(git: ShadowGit, old_tree: str, new_tree: str, changes: list[FileChange]) -> None:
    """Attach to each changed text file its unified diff (old tree -> new tree)."""
    if old_tree == new_tree:
        return
    out = git.run(["diff-tree", "-r", "-p", "--no-renames", "--no-color", old_tree, new_tree])
    by_path: dict[str, list[bytes]] = {}
    for chunk in out.split(b"\ndiff --git ")[0:]:
        if not chunk:
            continue
        if not chunk.startswith(b"diff --git "):
            chunk = b"diff --git " + chunk
        header, _, _ = chunk.partition(b"\n")
        path = _header_path(header[len(b"diff --git ") :])
        by_path.setdefault(os.fsdecode(path), []).append(chunk.rstrip(b"\n") + b"\n")
    for c in changes:
        chunks = by_path.get(c.path)
        if not chunks:
            continue
        text = b"".join(chunks)
        if b"\nBinary files " in text or b"\nGIT binary patch" in text:
            c.binary = True
        if b"\n@@ " in text:
            c.patch = text.decode("utf-8", "surrogateescape")


_ESCAPES = {
    ord("a"): 7,
    ord("b"): 8,
    ord("t"): 9,
    ord("n"): 10,
    ord("v"): 11,
    ord("f"): 12,
    ord("r"): 13,
    ord('"'): 34,
    ord("\\"): 92,
}


def _header_path(rest: bytes) -> bytes:
    """The path of a `diff --git a/P b/P` header (C-quoted by git when unusual)."""
    if not rest.startswith(b'"'):
        n = (len(rest) - 5) // 2
        return rest[2 : 2 + n]
    out = bytearray()
    i = 1
    while i < len(rest) and rest[i] != ord('"'):
        ch = rest[i]
        if ch == ord("\\"):
            nxt = rest[i + 1]
            if ord("0") <= nxt <= ord("7"):
                out.append(int(rest[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return bytes(out[2:])
