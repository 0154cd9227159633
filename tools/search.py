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

This module holds the two tools, their input models and grep's output formatting; the glob
and gitignore rules are in tools/ignore.py, the file listing and both engines in
tools/search_engines.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from ._common import (
    BaseTool,
    ToolError,
    ToolInput,
    containing_root,
    display_path,
    ok,
    resolve_in_tree,
    start_dir,
    work_root,
)
from .base import ToolContext, ToolResult
from .ignore import file_filter, glob_match, parse_gitignore, translate_glob
from .search_engines import _FileHits, _sniff_binary, list_files, search_py, search_rg

# glob_match, parse_gitignore, translate_glob, file_filter and list_files are re-exported: they
# were importable from here before the split.
__all__ = [
    "GlobInput",
    "GlobTool",
    "GrepInput",
    "GrepTool",
    "file_filter",
    "glob_match",
    "list_files",
    "parse_gitignore",
    "translate_glob",
]

DEFAULT_GLOB_LIMIT = 200
DEFAULT_GREP_LIMIT = 200
MAX_LINE_CHARS = 500
MAX_OUTPUT_CHARS = 30_000


# --------------------------------------------------------------------------------------------
# The tools
# --------------------------------------------------------------------------------------------


def _target(path: str | None, ctx: ToolContext) -> Path:
    target = resolve_in_tree(path, ctx) if path is not None else start_dir(ctx)
    top = containing_root(target, ctx) or work_root(ctx)
    if ".git" in target.relative_to(top).parts:
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
    def __init__(
        self, *, use_rg: bool | None = None, max_results: int = DEFAULT_GLOB_LIMIT
    ) -> None:
        """`use_rg`: None = ripgrep when `rg` is on PATH; False = the pure-Python fallback."""
        rg = shutil.which("rg") is not None
        if use_rg and not rg:
            raise ValueError("use_rg=True but rg is not on PATH")
        self.use_rg = rg if use_rg is None else use_rg
        self.max_results = max_results

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return True


class GlobInput(ToolInput):
    pattern: str = Field(
        description="Glob matched against paths relative to `path`, e.g. `**/*.py`, `src/**/*.ts`, `*.md`"
    )
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

    def __init__(
        self, *, use_rg: bool | None = None, max_results: int = DEFAULT_GLOB_LIMIT
    ) -> None:
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
                raise ToolError(
                    f"The pattern {a.pattern} is absolute; give it relative to the searched folder ({display_path(folder, ctx)})."
                )
        pattern = pattern.removeprefix("./")
        if ".." in pattern.split("/"):
            raise ToolError(
                "The pattern may not contain '..'; set path to search another folder inside the work tree."
            )
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
    pattern: str = Field(
        description="Regular expression to search for (ripgrep / Rust regex syntax)"
    )
    path: str | None = Field(
        None, description="File or folder to search (default: the work tree root)"
    )
    glob: str | None = Field(
        None,
        description="Only search files matching this glob: `*.py` (file name), `src/**/*.ts` (path), `!*.min.js` to exclude",
    )
    case_insensitive: bool = Field(False, description="Match regardless of case")
    output_mode: Literal["files_with_matches", "content", "count"] = Field(
        "files_with_matches",
        description="files_with_matches: the files that match; content: matching lines with line numbers; count: matches per file",
    )
    context: int | None = Field(
        None, ge=0, le=50, description="content mode: lines of context before and after each match"
    )
    max_results: int | None = Field(
        None, ge=1, le=5000, description="Cap on files (or lines in content mode) returned"
    )


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

    def __init__(
        self, *, use_rg: bool | None = None, max_results: int = DEFAULT_GREP_LIMIT
    ) -> None:
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
            whole_tree = (
                True  # ripgrep walks the folder itself, with the same ignore rules as --files
            )
        else:
            files = list_files(target, ctx, use_rg=self.use_rg)
            if a.glob:
                accept = file_filter(a.glob)
                base = str(target)
                files = [f for f in files if accept(f[len(base) + 1 :])]
        if self.use_rg:
            hits = search_rg(a.pattern, a.case_insensitive, target, files, whole_tree, ctx_lines)
        else:
            hits = search_py(a.pattern, a.case_insensitive, files, ctx_lines)
        hits = {p: h for p, h in hits.items() if h.count and not _sniff_binary(p)}
        return ok(self._format(a, hits, target, ctx, ctx_lines))

    # -- output --------------------------------------------------------------------------------

    def _format(
        self,
        a: GrepInput,
        hits: dict[str, _FileHits],
        target: Path,
        ctx: ToolContext,
        ctx_lines: int,
    ) -> str:
        limit = a.max_results or self.max_results
        if not hits:
            return (
                f"No matches for {a.pattern!r} in {_where(target, ctx)}"
                + (f" (files matching {a.glob!r})" if a.glob else "")
                + "."
            )
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
            text = (
                f"Found {_n(total_matches, 'matching line')} in {_n(len(files), 'file')}\n"
                + "\n".join(rows)
            )
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
                    text = (
                        text[:MAX_LINE_CHARS]
                        + f" ... [{len(text) - MAX_LINE_CHARS} more characters]"
                    )
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
        text = (
            f"Found {_n(total_matches, 'matching line')} in {_n(len(files), 'file')}\n"
            + "\n".join(rows)
        )
        if cut:
            text += "\n[Output cut; narrow the search (path, glob, a more specific pattern) or raise max_results.]"
        return text
