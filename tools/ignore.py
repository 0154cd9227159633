"""Glob patterns and gitignore rules, for the `glob` and `grep` tools (tools/search.py).

- `translate_glob` turns a glob into a regex (`*`/`?` within a segment, `**` across, `[...]`,
  `{a,b}`); `glob_match` is the glob tool's whole-path rule and `file_filter` grep's `glob` rule.
- `parse_gitignore` reads gitignore syntax into rules; `_read_rules` loads one folder's
  `.gitignore` and `_ignored` gives the verdict of a stack of them for one path (used by the
  pure-Python file walk in tools/search_engines.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache


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
        elif line.startswith(("\\!", "\\#")):
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
