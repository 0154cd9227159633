"""The two search engines behind `glob` and `grep` (tools/search.py): which files, and what matches.

- Listing the files to search (`list_files`): ripgrep's `--files` when it is used; otherwise
  `git ls-files` inside a repository, else a walk that honours `.gitignore` files
  (tools/ignore.py). `_sniff_binary` is the shared binary-file test.
- Searching them (`search_rg`, `search_py`): ripgrep's `--json` output or Python's `re`, both
  giving `{absolute path: _FileHits}` with matched and context lines by line number.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import stat
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safegit import git_argv, isolated_env, user_excludes_file

from ._common import BINARY_SNIFF_BYTES, ToolError, containing_root, work_root
from .base import ToolContext
from .ignore import _ignored, _IgnoreLevel, _read_rules

_RG_BATCH = 1_000
# Files larger than this are not searched by either engine (ripgrep: --max-filesize): a 2 GB
# log or a sparse image would cost seconds and gigabytes for nothing a model can read.
MAX_FILE_BYTES = 50 * 2**20
_SUBPROCESS_TIMEOUT = 120


# --------------------------------------------------------------------------------------------
# Listing the files to search
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _git_env() -> dict[str, str]:
    """git on the user's tree runs with nothing that can execute (see safegit): a folder's
    `.git/config` (a nested repository planted by a tool call, say) can name an fsmonitor."""
    excludes = user_excludes_file()
    return isolated_env(
        {"core.excludesFile": excludes or "/dev/null", "core.untrackedCache": "false"},
        extra={"GIT_OPTIONAL_LOCKS": "0"},
    )


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(
            git_argv(args, _git_env(), git),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_SUBPROCESS_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _in_git_repo(folder: Path) -> bool:
    r = _git(["rev-parse", "--is-inside-work-tree"], folder)
    return r is not None and r.returncode == 0 and r.stdout.strip() == b"true"


def _git_ignored(folder: Path) -> bool:
    r = _git(["check-ignore", "-q", "--", "."], folder)
    return r is not None and r.returncode == 0


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _files_git(folder: Path) -> list[str] | None:
    listed = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], folder)
    ignored = _git(["ls-files", "-z", "--cached", "--ignored", "--exclude-standard"], folder)
    if listed is None or listed.returncode != 0 or ignored is None or ignored.returncode != 0:
        return None
    drop = set(ignored.stdout.split(b"\0"))
    out = set()
    for rel in listed.stdout.split(b"\0"):
        if not rel or rel in drop or rel.endswith(b"/"):
            continue
        rel_s = os.fsdecode(rel)
        if ".git" in rel_s.split("/"):
            continue
        full = os.path.join(folder, rel_s)
        if _is_regular(full):
            out.add(full)
    return sorted(out)


def _files_walk(folder: Path, top: Path) -> list[str]:
    """Walk `folder`, honouring the .gitignore files from `top` (the work tree root) down."""
    levels: list[_IgnoreLevel] = []
    if folder != top and folder.is_relative_to(top):
        cur = top
        for part in folder.relative_to(top).parts:
            lvl = _read_rules(str(cur))
            if lvl:
                levels.append(lvl)
            cur = cur / part
    out: list[str] = []

    def walk(d: str, levels: list[_IgnoreLevel]) -> None:
        lvl = _read_rules(d)
        if lvl:
            levels = [*levels, lvl]
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return
        for name in names:
            if name == ".git":
                continue
            full = f"{d}/{name}"
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if _ignored(full, is_dir, levels):
                continue
            if is_dir:
                walk(full, levels)
            elif stat.S_ISREG(st.st_mode):
                out.append(full)

    walk(str(folder), levels)
    return out


def _files_rg(folder: Path) -> list[str]:
    cmd = ["rg", "--files", "--null", *_RG_COMMON, "."]
    r = subprocess.run(  # noqa: PLW1510 - the exit status is read below (1: no files)
        cmd, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, timeout=_SUBPROCESS_TIMEOUT
    )
    if r.returncode not in (0, 1):
        msg = r.stderr.decode("utf-8", "replace").strip()
        if not r.stdout:
            raise ToolError(f"ripgrep failed: {msg}")
    out = []
    for rel in r.stdout.split(b"\0"):
        if not rel:
            continue
        rel_s = os.fsdecode(rel)
        rel_s = rel_s.removeprefix("./")
        out.append(os.path.join(str(folder), rel_s))
    return sorted(out)


_RG_COMMON = ["--no-config", "--hidden", "--no-require-git", "--no-ignore-dot", "--glob", "!.git"]


def list_files(folder: Path, ctx: ToolContext, *, use_rg: bool) -> list[str]:
    """Absolute paths of the searchable regular files under `folder`, sorted."""
    if use_rg:
        return _files_rg(folder)
    if _in_git_repo(folder) and not _git_ignored(folder):
        files = _files_git(folder)
        if files is not None:
            return files
    return _files_walk(folder, containing_root(folder, ctx) or work_root(ctx))


def _sniff_binary(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"\0" in f.read(BINARY_SNIFF_BYTES)
    except OSError:
        return True


# --------------------------------------------------------------------------------------------
# Searching them
# --------------------------------------------------------------------------------------------


@dataclass
class _FileHits:
    lines: dict[int, tuple[str, bool]] = field(default_factory=dict)  # number -> (text, is_match)

    @property
    def count(self) -> int:
        return sum(1 for _, m in self.lines.values() if m)


def _strip_eol(s: str) -> str:
    s = s.removesuffix("\n")
    s = s.removesuffix("\r")
    return s


def search_py(
    pattern: str, case_insensitive: bool, files: list[str], ctx_lines: int
) -> dict[str, _FileHits]:
    """The fallback engine: Python's `re` over `files`, line by line (memory stays bounded by
    the longest line), skipping binary files and files over MAX_FILE_BYTES as ripgrep is told to."""
    try:
        rx = re.compile(pattern, re.IGNORECASE if case_insensitive else 0)
    except re.error as e:
        raise ToolError(f"Invalid regular expression {pattern!r}: {e}") from None
    out: dict[str, _FileHits] = {}
    for path in files:
        fh = _search_file(path, rx, ctx_lines)
        if fh is not None and fh.lines:
            out[path] = fh
    return out


def _search_file(path: str, rx: re.Pattern[str], ctx_lines: int) -> _FileHits | None:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with f:
        try:
            st = os.fstat(f.fileno())
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        if b"\0" in f.peek(BINARY_SNIFF_BYTES)[:BINARY_SNIFF_BYTES]:
            return None
        fh = _FileHits()
        before: deque[tuple[int, str]] = deque(maxlen=ctx_lines or 1)
        after = 0
        for number, raw in enumerate(f, 1):
            text = raw.decode("utf-8", "replace").removesuffix("\n")
            line = _strip_eol(text)
            if rx.search(text):  # on the line with its \r, as ripgrep sees it
                if ctx_lines:
                    for n, text in before:
                        fh.lines.setdefault(n, (text, False))
                    before.clear()
                fh.lines[number] = (line, True)
                after = ctx_lines
            elif after:
                fh.lines.setdefault(number, (line, False))
                after -= 1
            elif ctx_lines:
                before.append((number, line))
        return fh


def search_rg(
    pattern: str,
    case_insensitive: bool,
    target: Path,
    files: list[str],
    whole_tree: bool,
    ctx_lines: int,
) -> dict[str, _FileHits]:
    """ripgrep over `files` (in batches), or over the whole `target` folder when `whole_tree`."""
    base = ["rg", "--json", "--text", *_RG_COMMON, "--max-filesize", str(MAX_FILE_BYTES)]
    if case_insensitive:
        base.append("--ignore-case")
    else:
        base.append("--case-sensitive")
    if ctx_lines:
        base += ["--context", str(ctx_lines)]
    base += ["--regexp", pattern, "--"]
    out: dict[str, _FileHits] = {}
    if whole_tree:
        _rg_call(base + ["."], target, out)
    else:
        for i in range(0, len(files), _RG_BATCH):
            _rg_call(
                base + files[i : i + _RG_BATCH], target if target.is_dir() else target.parent, out
            )
    return out


def _rg_call(cmd: list[str], cwd: Path, out: dict[str, _FileHits]) -> None:
    r = subprocess.run(  # noqa: PLW1510 - the exit status is read below (1: no match)
        cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=_SUBPROCESS_TIMEOUT
    )
    if r.returncode == 2 and not r.stdout:
        err = r.stderr.decode("utf-8", "replace").strip()
        raise ToolError(f"Invalid search: {err}" if "regex" in err else f"ripgrep failed: {err}")

    def text_of(obj: dict[str, Any]) -> str:
        if "text" in obj:
            return obj["text"]
        return base64.b64decode(obj.get("bytes", "")).decode("utf-8", "replace")

    for line in r.stdout.splitlines():
        # The per-match offsets (`submatches`, the last key of a match) are never used and
        # can be 50x the line itself on a long minified line: cut them before parsing. A
        # quote inside a JSON string is escaped, so this key cannot occur in the text.
        cut = line.find(b',"submatches":')
        if cut != -1:
            line = line[:cut] + b"}}"
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        kind = msg.get("type")
        if kind not in ("match", "context"):
            continue
        data = msg["data"]
        p = text_of(data["path"])
        full = os.path.normpath(os.path.join(str(cwd), p))
        fh = out.setdefault(full, _FileHits())
        num = data["line_number"]
        text = _strip_eol(text_of(data["lines"]))
        is_match = kind == "match"
        if is_match or num not in fh.lines:
            fh.lines[num] = (text, is_match)
