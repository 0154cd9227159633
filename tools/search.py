"""`glob` and `grep`: read-only search of the work tree.

Which files are searched (both tools, both engines):
- regular files under `path` (default: the work tree root), hidden ones included;
- never anything inside a `.git` folder, never through a symbolic link (links are skipped);
- gitignored files skipped: with ripgrep, by ripgrep's own rules (`--no-require-git`, so a
  `.gitignore` counts outside a repository too; `.ignore`/`.rgignore` files are not read);
  without it, inside a git repository the files are `git ls-files --cached --others
  --exclude-standard` minus tracked-but-ignored ones (`--cached --ignored`), and elsewhere a walk
  honours every `.gitignore` from the work tree root down (gitignore syntax: `#` comments,
  `!` negation, trailing `/` = folders only, a `/` inside = anchored, `*`, `?`, `[...]`, `**`).
  Known limits of the fallback: `.gitignore` files above the work tree root and a global
  excludes file are not read outside a repository; inside a repository, searching a folder that
  is itself ignored walks it with the `.gitignore` files found in and under it, as ripgrep does.
- grep skips binary files (a NUL byte in the first 8 KB), with either engine.

The `glob` tool's pattern is matched against the path relative to `path` (`*` does not cross
`/`, `**` does, `{a,b}` alternatives): `*.py` = top level only, `**/*.py` = everywhere. grep's
`glob` filter is matched against the file name when it has no `/`, else against the path
relative to `path`; a leading `!` excludes. Both filters are applied by this module (not by
ripgrep), so the engines select the same files. Regexes: ripgrep uses Rust's regex syntax, the
fallback Python's `re`; the common subset behaves the same.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from pydantic import Field

from ._common import BINARY_SNIFF_BYTES, BaseTool, ToolError, ToolInput, display_path, ok, resolve_in_tree, work_root
from .base import ToolContext, ToolResult

DEFAULT_GLOB_LIMIT = 200
DEFAULT_GREP_LIMIT = 200
MAX_LINE_CHARS = 500
MAX_OUTPUT_CHARS = 30_000
_RG_BATCH = 1_000
_SUBPROCESS_TIMEOUT = 120


# --------------------------------------------------------------------------------------------
# Glob patterns and gitignore rules
# --------------------------------------------------------------------------------------------


def _split_braces(body: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def translate_glob(pat: str, *, braces: bool = True) -> str:
    """A regex (for fullmatch) from a glob: `*`/`?` stay within a segment, `**` crosses them."""
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            if pat.startswith("**", i):
                j = i + 2
                whole = (i == 0 or pat[i - 1] == "/") and (j == n or pat[j] == "/")
                if whole:
                    if j == n:
                        out.append(".*")
                        i = j
                    else:
                        out.append("(?:.*/)?")
                        i = j + 1
                    continue
                out.append("[^/]*")
                i = j
                continue
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and pat[j] in "!^":
                j += 1
            if j < n and pat[j] == "]":
                j += 1
            while j < n and pat[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
                i += 1
                continue
            body = pat[i + 1 : j]
            neg = body[:1] in ("!", "^")
            if neg:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[^/{body}]" if neg else f"[{body}]")
            i = j + 1
        elif c == "{" and braces:
            depth, j = 0, i
            while j < n:
                if pat[j] == "{":
                    depth += 1
                elif pat[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                out.append(re.escape(c))
                i += 1
                continue
            alts = _split_braces(pat[i + 1 : j])
            out.append("(?:" + "|".join(translate_glob(a, braces=True) for a in alts) + ")")
            i = j + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pat[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _compiled_glob(pat: str) -> re.Pattern[str]:
    return re.compile(translate_glob(pat), re.DOTALL)


def glob_match(pattern: str, rel_path: str) -> bool:
    """The glob tool's rule: the whole relative path must match."""
    return _compiled_glob(pattern).fullmatch(rel_path) is not None


def file_filter(glob: str) -> Callable[[str], bool]:
    """grep's `glob` rule: no `/` = the file name; with `/` = the relative path; `!` excludes."""
    neg = glob.startswith("!")
    pat = glob[1:] if neg else glob
    anchored = "/" in pat
    rx = _compiled_glob(pat.lstrip("/"))

    def accept(rel: str) -> bool:
        target = rel if anchored else rel.rsplit("/", 1)[-1]
        hit = rx.fullmatch(target) is not None
        return hit != neg

    return accept


@dataclass
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool


def parse_gitignore(text: str) -> list[_Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw
        if not line or line.startswith("#"):
            continue
        # Trailing spaces are dropped unless escaped with a backslash.
        stripped = line.rstrip(" ")
        if stripped.endswith("\\") and len(stripped) < len(line):
            stripped += " "
        line = stripped
        if not line:
            continue
        negate = False
        if line.startswith("!"):
            negate, line = True, line[1:]
        elif line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        try:
            rx = re.compile(translate_glob(line, braces=False), re.DOTALL)
        except re.error:
            continue
        rules.append(_Rule(rx, negate, dir_only, anchored))
    return rules


@dataclass
class _IgnoreLevel:
    base: str  # absolute folder of the .gitignore, no trailing slash
    rules: list[_Rule] = field(default_factory=list)


def _read_rules(folder: str) -> _IgnoreLevel | None:
    try:
        with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
            rules = parse_gitignore(f.read())
    except OSError:
        return None
    return _IgnoreLevel(folder, rules) if rules else None


def _ignored(path: str, is_dir: bool, levels: list[_IgnoreLevel]) -> bool:
    verdict = False
    for lvl in levels:
        if not path.startswith(lvl.base + "/"):
            continue
        rel = path[len(lvl.base) + 1 :]
        name = rel.rsplit("/", 1)[-1]
        for r in lvl.rules:
            if r.dir_only and not is_dir:
                continue
            if r.regex.fullmatch(rel if r.anchored else name):
                verdict = not r.negate
    return verdict


# --------------------------------------------------------------------------------------------
# Listing the files to search
# --------------------------------------------------------------------------------------------


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes] | None:
    if shutil.which("git") is None:
        return None
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_SUBPROCESS_TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
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
    r = subprocess.run(cmd, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, timeout=_SUBPROCESS_TIMEOUT)
    if r.returncode not in (0, 1):
        msg = r.stderr.decode("utf-8", "replace").strip()
        if not r.stdout:
            raise ToolError(f"ripgrep failed: {msg}")
    out = []
    for rel in r.stdout.split(b"\0"):
        if not rel:
            continue
        rel_s = os.fsdecode(rel)
        if rel_s.startswith("./"):
            rel_s = rel_s[2:]
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
    return _files_walk(folder, work_root(ctx))


def _sniff_binary(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"\0" in f.read(BINARY_SNIFF_BYTES)
    except OSError:
        return True


# --------------------------------------------------------------------------------------------
# The tools
# --------------------------------------------------------------------------------------------


def _target(path: str | None, ctx: ToolContext) -> Path:
    target = resolve_in_tree(path, ctx) if path is not None else work_root(ctx)
    if ".git" in target.relative_to(work_root(ctx)).parts:
        raise ToolError(f"The path {path} is inside a .git folder, which is never searched.")
    if not target.exists():
        raise ToolError(f"The path {path} does not exist.")
    return target


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _where(p: Path, ctx: ToolContext) -> str:
    shown = display_path(p, ctx)
    return "the work tree" if shown == "." else shown


class _SearchTool(BaseTool):
    def __init__(self, *, use_rg: bool | None = None, max_results: int = DEFAULT_GLOB_LIMIT) -> None:
        """`use_rg`: None = ripgrep when `rg` is on PATH; False = the pure-Python fallback."""
        rg = shutil.which("rg") is not None
        if use_rg and not rg:
            raise ValueError("use_rg=True but rg is not on PATH")
        self.use_rg = rg if use_rg is None else use_rg
        self.max_results = max_results

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return True


class GlobInput(ToolInput):
    pattern: str = Field(description="Glob matched against paths relative to `path`, e.g. `**/*.py`, `src/**/*.ts`, `*.md`")
    path: str | None = Field(None, description="Folder to search in (default: the work tree root)")


class GlobTool(_SearchTool):
    name: ClassVar[str] = "glob"
    input_model = GlobInput
    DESCRIPTION = (
        "Find files by name pattern. `*` matches within one folder level, `**` across levels, "
        "`{a,b}` either: `**/*.py` finds Python files everywhere, `*.py` only at the top of `path`, "
        "`src/**/test_*.py` under src. Results are paths relative to the work tree root, newest "
        "(modification time) first. Gitignored files and .git are skipped; hidden files are included."
    )

    def __init__(self, *, use_rg: bool | None = None, max_results: int = DEFAULT_GLOB_LIMIT) -> None:
        super().__init__(use_rg=use_rg, max_results=max_results)

    def _run(self, a: GlobInput, ctx: ToolContext) -> ToolResult:
        folder = _target(a.path, ctx)
        if not folder.is_dir():
            raise ToolError(f"The path {a.path} is not a directory; glob needs a folder to search.")
        pattern = a.pattern.strip()
        if not pattern:
            raise ToolError("pattern must not be empty (e.g. **/*.py).")
        if pattern.startswith("/"):
            prefix = str(folder).rstrip("/") + "/"
            if pattern.startswith(prefix):
                pattern = pattern[len(prefix) :]
            else:
                raise ToolError(f"The pattern {a.pattern} is absolute; give it relative to the searched folder ({display_path(folder, ctx)}).")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        if ".." in pattern.split("/"):
            raise ToolError("The pattern may not contain '..'; set path to search another folder inside the work tree.")
        base = str(folder)
        hits = []
        for full in list_files(folder, ctx, use_rg=self.use_rg):
            rel = full[len(base) + 1 :]
            if glob_match(pattern, rel):
                try:
                    mtime = os.lstat(full).st_mtime
                except OSError:
                    continue
                hits.append((mtime, display_path(Path(full), ctx)))
        if not hits:
            return ok(f"No files match the pattern {a.pattern!r} in {_where(folder, ctx)}.")
        hits.sort(key=lambda t: (-t[0], t[1]))
        shown = [p for _, p in hits[: self.max_results]]
        text = "\n".join(shown)
        if len(hits) > self.max_results:
            text += f"\n[Showing the {self.max_results} most recently modified of {len(hits)} matching files; narrow the pattern or path to see others.]"
        return ok(text)


class GrepInput(ToolInput):
    pattern: str = Field(description="Regular expression to search for (ripgrep / Rust regex syntax)")
    path: str | None = Field(None, description="File or folder to search (default: the work tree root)")
    glob: str | None = Field(
        None, description="Only search files matching this glob: `*.py` (file name), `src/**/*.ts` (path), `!*.min.js` to exclude"
    )
    case_insensitive: bool = Field(False, description="Match regardless of case")
    output_mode: Literal["files_with_matches", "content", "count"] = Field(
        "files_with_matches",
        description="files_with_matches: the files that match; content: matching lines with line numbers; count: matches per file",
    )
    context: int | None = Field(None, ge=0, le=50, description="content mode: lines of context before and after each match")
    max_results: int | None = Field(None, ge=1, le=5000, description="Cap on files (or lines in content mode) returned")


@dataclass
class _FileHits:
    lines: dict[int, tuple[str, bool]] = field(default_factory=dict)  # number -> (text, is_match)

    @property
    def count(self) -> int:
        return sum(1 for _, m in self.lines.values() if m)


def _strip_eol(s: str) -> str:
    if s.endswith("\n"):
        s = s[:-1]
    if s.endswith("\r"):
        s = s[:-1]
    return s


class GrepTool(_SearchTool):
    name: ClassVar[str] = "grep"
    input_model = GrepInput
    DESCRIPTION = (
        "Search file contents with a regular expression (ripgrep syntax). output_mode: "
        "files_with_matches (default: the matching files), content (the matching lines as "
        "`path:line:text`, with `context` lines around them as `path-line-text`), or count "
        "(`path:N`). Filter files with glob (`*.py`, `src/**/*.ts`, `!*.lock`). Gitignored files, "
        ".git and binary files are skipped. Paths are relative to the work tree root."
    )

    def __init__(self, *, use_rg: bool | None = None, max_results: int = DEFAULT_GREP_LIMIT) -> None:
        super().__init__(use_rg=use_rg, max_results=max_results)

    def _run(self, a: GrepInput, ctx: ToolContext) -> ToolResult:
        if a.pattern == "":
            raise ToolError("pattern must not be empty.")
        target = _target(a.path, ctx)
        ctx_lines = (a.context or 0) if a.output_mode == "content" else 0
        files: list[str] = []
        whole_tree = False
        if not target.is_dir():
            if _sniff_binary(str(target)):
                return ok(f"{display_path(target, ctx)} is a binary file; grep skips binary files.")
            files = [str(target)]
        elif self.use_rg and not a.glob:
            whole_tree = True  # ripgrep walks the folder itself, with the same ignore rules as --files
        else:
            files = list_files(target, ctx, use_rg=self.use_rg)
            if a.glob:
                accept = file_filter(a.glob)
                base = str(target)
                files = [f for f in files if accept(f[len(base) + 1 :])]
        if self.use_rg:
            hits = self._search_rg(a, target, files, whole_tree, ctx_lines)
        else:
            hits = self._search_py(a, files, ctx_lines)
        hits = {p: h for p, h in hits.items() if h.count and not _sniff_binary(p)}
        return ok(self._format(a, hits, target, ctx, ctx_lines))

    # -- engines -------------------------------------------------------------------------------

    def _search_py(self, a: GrepInput, files: list[str], ctx_lines: int) -> dict[str, _FileHits]:
        try:
            rx = re.compile(a.pattern, re.IGNORECASE if a.case_insensitive else 0)
        except re.error as e:
            raise ToolError(f"Invalid regular expression {a.pattern!r}: {e}") from None
        out: dict[str, _FileHits] = {}
        for path in files:
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            if b"\0" in raw[:BINARY_SNIFF_BYTES]:
                continue
            lines = raw.decode("utf-8", "replace").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            matched = [i for i, line in enumerate(lines) if rx.search(line)]
            if not matched:
                continue
            fh = _FileHits()
            for i in matched:
                lo, hi = max(0, i - ctx_lines), min(len(lines) - 1, i + ctx_lines)
                for j in range(lo, hi + 1):
                    if j + 1 not in fh.lines:
                        fh.lines[j + 1] = (_strip_eol(lines[j]), False)
            for i in matched:
                fh.lines[i + 1] = (_strip_eol(lines[i]), True)
            out[path] = fh
        return out

    def _search_rg(
        self, a: GrepInput, target: Path, files: list[str], whole_tree: bool, ctx_lines: int
    ) -> dict[str, _FileHits]:
        base = ["rg", "--json", "--text", *_RG_COMMON]
        if a.case_insensitive:
            base.append("--ignore-case")
        else:
            base.append("--case-sensitive")
        if ctx_lines:
            base += ["--context", str(ctx_lines)]
        base += ["--regexp", a.pattern, "--"]
        out: dict[str, _FileHits] = {}
        if whole_tree:
            self._rg_call(base + ["."], target, out)
        else:
            for i in range(0, len(files), _RG_BATCH):
                self._rg_call(base + files[i : i + _RG_BATCH], target if target.is_dir() else target.parent, out)
        return out

    @staticmethod
    def _rg_call(cmd: list[str], cwd: Path, out: dict[str, _FileHits]) -> None:
        r = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=_SUBPROCESS_TIMEOUT)
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

    # -- output --------------------------------------------------------------------------------

    def _format(self, a: GrepInput, hits: dict[str, _FileHits], target: Path, ctx: ToolContext, ctx_lines: int) -> str:
        limit = a.max_results or self.max_results
        if not hits:
            return f"No matches for {a.pattern!r} in {_where(target, ctx)}" + (f" (files matching {a.glob!r})" if a.glob else "") + "."
        files = sorted(hits, key=lambda p: display_path(Path(p), ctx))
        total_matches = sum(h.count for h in hits.values())
        if a.output_mode == "files_with_matches":
            shown = [display_path(Path(p), ctx) for p in files[:limit]]
            text = f"Found {_n(len(files), 'file')}\n" + "\n".join(shown)
            if len(files) > limit:
                text += f"\n[Showing {limit} of {len(files)} files; narrow the search or raise max_results.]"
            return text
        if a.output_mode == "count":
            rows = [f"{display_path(Path(p), ctx)}:{hits[p].count}" for p in files[:limit]]
            text = f"Found {_n(total_matches, 'matching line')} in {_n(len(files), 'file')}\n" + "\n".join(rows)
            if len(files) > limit:
                text += f"\n[Showing {limit} of {len(files)} files; narrow the search or raise max_results.]"
            return text
        rows: list[str] = []
        cut = False
        used = 0
        for p in files:
            shown_path = display_path(Path(p), ctx)
            prev = None
            for num in sorted(hits[p].lines):
                text, is_match = hits[p].lines[num]
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + f" ... [{len(text) - MAX_LINE_CHARS} more characters]"
                if ctx_lines and rows and (prev is None or num != prev + 1):
                    rows.append("--")
                row = f"{shown_path}{':' if is_match else '-'}{num}{':' if is_match else '-'}{text}"
                if len(rows) >= limit or used + len(row) > MAX_OUTPUT_CHARS:
                    cut = True
                    break
                rows.append(row)
                used += len(row) + 1
                prev = num
            if cut:
                break
        if rows and rows[-1] == "--":
            rows.pop()
        text = f"Found {_n(total_matches, 'matching line')} in {_n(len(files), 'file')}\n" + "\n".join(rows)
        if cut:
            text += "\n[Output cut; narrow the search (path, glob, a more specific pattern) or raise max_results.]"
        return text
