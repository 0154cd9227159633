"""Shared pieces of the tools: the base class, schema cleaning, line numbering, text round-trips,
atomic writes and work-tree path checks.

Nothing here is part of the runtime's contract (that is `tools/base.py`); the tools build on it.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .base import ToolContext, ToolResult, function_spec, json_schema, validation_message

log = logging.getLogger(__name__)

LINE_NUMBER_WIDTH = 6
BINARY_SNIFF_BYTES = 8192


class ToolError(Exception):
    """A failure worded for the model; `BaseTool.run` turns it into an is_error result."""


# --------------------------------------------------------------------------------------------
# Input models and the base class
# --------------------------------------------------------------------------------------------


def _clean_schema(schema: dict[str, Any], *_: Any) -> None:
    """Make pydantic's JSON schema plain: no titles, `X | None` shown as X, no `default: null`.

    Providers read the schema as documentation; `anyOf [..., null]` only adds noise there.
    """
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        any_of = prop.get("anyOf")
        if isinstance(any_of, list):
            rest = [s for s in any_of if s.get("type") != "null"]
            if len(rest) == 1 and len(rest) != len(any_of):
                prop.pop("anyOf")
                for k, v in rest[0].items():
                    prop.setdefault(k, v)
        if "default" in prop and prop["default"] is None:
            prop.pop("default")


class ToolInput(BaseModel):
    """Base of every tool's input model: unknown keys are reported, the schema is kept plain."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_clean_schema)


class BaseTool:
    """Validation, error wrapping and the JSON-schema specs shared by every tool.

    Subclasses set `name`, `input_model`, `DESCRIPTION` and implement `_run(parsed, ctx)`,
    raising `ToolError` for anything the model should read as a failed call.
    """

    name: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    DESCRIPTION: ClassVar[str] = ""

    def description(self) -> str:
        return self.DESCRIPTION

    def input_schema(self) -> dict[str, Any]:
        return json_schema(self.input_model)

    def anthropic_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description(),
            "input_schema": self.input_schema(),
        }

    def openai_spec(self) -> dict[str, Any]:
        return function_spec(self.name, self.description(), self.input_model)

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if not isinstance(args, dict):
            return ToolResult(
                content=f"Invalid input for {self.name}: expected a JSON object, got {type(args).__name__}",
                is_error=True,
            )
        try:
            parsed = self.input_model.model_validate(args)
        except ValidationError as e:
            return ToolResult(content=validation_message(self.name, e), is_error=True)
        try:
            return self._run(parsed, ctx)
        except ToolError as e:
            return ToolResult(content=str(e), is_error=True)
        except (
            Exception
        ) as e:  # a bug or an OS error we did not word: still a result, never a raise
            log.exception("tool %s failed", self.name)
            return ToolResult(content=f"{self.name} failed: {type(e).__name__}: {e}", is_error=True)

    def _run(self, args: Any, ctx: ToolContext) -> ToolResult:  # pragma: no cover - abstract
        raise NotImplementedError


def ok(content: str) -> ToolResult:
    return ToolResult(content=content, is_error=False)


# --------------------------------------------------------------------------------------------
# Lines: splitting, numbering, viewing, replacing, inserting (shared by editor and memory)
# --------------------------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Lines split on "\\n" only (never on \\r, \\f, \\u2028 ... as str.splitlines would), no ends."""
    if text == "":
        return []
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    return parts


def number_lines(lines: list[str], start: int = 1) -> str:
    """`cat -n` style: the number right-aligned in 6 columns, a tab, the line."""
    return "\n".join(f"{n:>{LINE_NUMBER_WIDTH}}\t{line}" for n, line in enumerate(lines, start))


def view_lines(
    lines: list[str],
    view_range: list[int] | None,
    path: str,
    *,
    max_chars: int,
    max_lines: int,
) -> str:
    """Numbered lines of a file (or of `view_range`), truncated with a note past the limits."""
    n = len(lines)
    start, end = 1, n
    if view_range is not None:
        if len(view_range) != 2:
            raise ToolError(
                f"Invalid view_range {view_range}: give two integers [start, end] (1-based, end -1 = to the end)"
            )
        start, end = view_range
        if start < 1:
            raise ToolError(
                f"Invalid view_range {view_range}: start must be >= 1 (lines are numbered from 1)"
            )
        if n == 0:
            raise ToolError(f"Invalid view_range {view_range}: {path} is empty")
        if start > n:
            raise ToolError(
                f"Invalid view_range {view_range}: start {start} is past the end; {path} has {n} lines"
            )
        if end == -1 or end > n:
            end = n
        elif end < start:
            raise ToolError(
                f"Invalid view_range {view_range}: end must be >= start, or -1 for the end of the file"
            )
    if n == 0:
        return f"(the file {path} is empty)"
    out: list[str] = []
    used = 0
    last = start - 1
    for i in range(start, end + 1):
        line = lines[i - 1]
        entry = f"{i:>{LINE_NUMBER_WIDTH}}\t{line}"
        if out and (len(out) >= max_lines or used + len(entry) + 1 > max_chars):
            break
        if not out and len(entry) > max_chars:
            # A single line longer than the whole budget (minified code): show its start only.
            entry = entry[:max_chars] + f" ... [line {i} cut: {len(line)} characters long]"
        out.append(entry)
        used += len(entry) + 1
        last = i
    text = "\n".join(out)
    if last < end:
        text += (
            f"\n[Output truncated: showed lines {start}-{last} of {n}. "
            f"To see more, call view again with view_range [{last + 1}, {min(end, last + max_lines)}] "
            f"(or [{last + 1}, -1] for the rest).]"
        )
    return text


def occurrences(text: str, needle: str) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence of `needle`."""
    found = []
    i = text.find(needle)
    while i != -1:
        found.append(i)
        i = text.find(needle, i + 1)
    return found


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


_LINE_PREFIX = re.compile(r"^\s*\d+\t")


def _whitespace_insensitive_hits(text: str, old: str, limit: int = 5) -> list[int]:
    """Line numbers where `old` matches if every line is compared stripped (diagnostics only)."""
    want = [s.strip() for s in old.strip("\n").split("\n")]
    if not any(want):
        return []
    have = [s.strip() for s in split_lines(text)]
    hits = []
    for i in range(len(have) - len(want) + 1):
        if have[i] == want[0] and have[i : i + len(want)] == want:
            hits.append(i + 1)
            if len(hits) >= limit:
                break
    return hits


def replace_once(
    text: str, old: str, new: str, path: str, *, note: str = ""
) -> tuple[str, int, int]:
    """Replace the single occurrence of `old`; returns (new text, first changed line, last line).

    Strict: `old` must occur exactly once, verbatim. There is no looser matching; when nothing
    matches, the error says whether a whitespace-insensitive match exists so the model can copy
    the exact text (diagnostics only, never applied).
    """
    if old == "":
        raise ToolError(
            "old_str must not be empty: give the exact text to replace (to add text use insert, "
            "to write a whole file use create)"
        )
    hits = occurrences(text, old)
    if not hits:
        msg = f"No match: old_str does not appear verbatim in {path}; nothing was changed."
        lines = old.split("\n")
        if all(_LINE_PREFIX.match(s) for s in lines if s.strip()):
            msg += (
                " old_str seems to include the line-number prefixes of view output "
                "(spaces, a number and a tab); leave them out."
            )
        near = _whitespace_insensitive_hits(text, old)
        if near:
            where = ", ".join(str(n) for n in near)
            msg += (
                f" Text matching it except for whitespace/indentation starts at line(s) {where}; "
                "view those lines and copy them exactly (tabs vs spaces, trailing spaces)."
            )
        else:
            msg += " View the file to get the current text and copy it exactly."
        raise ToolError(msg + note)
    if len(hits) > 1:
        lines_at = [line_of(text, h) for h in hits]
        shown = ", ".join(str(n) for n in lines_at[:20]) + (", ..." if len(lines_at) > 20 else "")
        raise ToolError(
            f"old_str appears {len(hits)} times in {path} (lines {shown}); "
            "add more context to make it unique. Nothing was changed."
        )
    at = hits[0]
    new_text = text[:at] + new + text[at + len(old) :]
    first = line_of(text, at)
    last = first + new.count("\n")
    return new_text, first, last


def insert_at(text: str, insert_line: int, new: str, path: str) -> tuple[str, int, int]:
    """Insert `new` after line `insert_line` (0 = at the top); returns (text, first, last line).

    The inserted text always becomes whole lines; the file's final-newline state is kept.
    """
    lines = split_lines(text)
    n = len(lines)
    if insert_line < 0 or insert_line > n:
        raise ToolError(
            f"Invalid insert_line {insert_line}: {path} has {n} lines, so insert_line must be "
            f"between 0 (before the first line) and {n} (after the last line)."
        )
    block = new if new.endswith("\n") else new + "\n"
    ends_with_newline = text.endswith("\n") or text == ""
    if insert_line == n and not ends_with_newline:
        # Appending after an unterminated last line: terminate it, keep the file unterminated.
        new_text = text + "\n" + block[:-1]
    else:
        head = "".join(line + "\n" for line in lines[:insert_line])
        new_text = head + block + text[len(head) :]
    first = insert_line + 1
    last = insert_line + block.count("\n")
    return new_text, first, last


def snippet(text: str, first: int, last: int, context: int = 4) -> str:
    lines = split_lines(text)
    lo = max(1, first - context)
    hi = min(len(lines), max(last, first) + context)
    return number_lines(lines[lo - 1 : hi], lo)


# --------------------------------------------------------------------------------------------
# Text files: decode with what's needed to write them back byte for byte
# --------------------------------------------------------------------------------------------

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class TextDoc:
    """A decoded text file plus how to encode it back.

    `text` has LF line ends when the file is CRLF throughout (`newline == "\\r\\n"`); a file
    with mixed endings is kept as it is (`mixed=True`, `newline == "\\n"`).
    """

    text: str
    encoding: str = "utf-8"  # "utf-8" or "latin-1"
    bom: bool = False
    newline: str = "\n"
    mixed: bool = False

    def encode(self, text: str, path: str) -> bytes:
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        try:
            data = text.encode(self.encoding)
        except UnicodeEncodeError as e:
            bad = text[e.start : e.end]
            raise ToolError(
                f"{path} is a {self.encoding} (not UTF-8) file, and the new text contains "
                f"{bad!r}, which it cannot hold; use only characters that exist in {self.encoding}. "
                "Nothing was changed."
            ) from None
        return (UTF8_BOM + data) if self.bom else data

    def normalise_input(self, s: str) -> str:
        """Text from the model, made to match `text` (the model sends LF)."""
        if "\r\n" in s and (self.newline == "\r\n" or "\r" not in self.text):
            return s.replace("\r\n", "\n")
        return s


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (8, 9, 10, 12, 13, 27)) + b"\x7f"


def is_binary(raw: bytes) -> bool:
    return b"\x00" in raw[:BINARY_SNIFF_BYTES]


def decode_text(raw: bytes, path: str) -> TextDoc:
    """Decode a file for editing; refuse binary files with a message the model can act on."""
    if is_binary(raw):
        raise ToolError(
            f"{path} is a binary file (it contains NUL bytes); it cannot be viewed or edited as text."
        )
    bom = raw.startswith(UTF8_BOM)
    body = raw[3:] if bom else raw
    try:
        text = body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        if bom:
            raise ToolError(
                f"{path} starts with a UTF-8 byte-order mark but is not valid UTF-8; it cannot be edited as text."
            ) from None
        sample = body[:BINARY_SNIFF_BYTES]
        controls = sum(sample.count(bytes([b])) for b in _CONTROL_BYTES)
        if sample and controls / len(sample) > 0.05:
            raise ToolError(
                f"{path} is not a text file (it is not UTF-8 and is full of control bytes); it cannot be edited as text."
            )
        # Latin-1 maps every byte to one character and back: the file round-trips unchanged.
        text = body.decode("latin-1")
        encoding = "latin-1"
    crlf = text.count("\r\n")
    lf = text.count("\n")
    if crlf and crlf == lf:
        return TextDoc(text.replace("\r\n", "\n"), encoding, bom, "\r\n", False)
    return TextDoc(text, encoding, bom, "\n", mixed=bool(crlf))


# --------------------------------------------------------------------------------------------
# Atomic writes and the work tree
# --------------------------------------------------------------------------------------------


def _current_umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename; keep the old file's mode (and owner)."""
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".godwit-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            if hasattr(os, "chown") and (st.st_uid != os.getuid() or st.st_gid != os.getgid()):
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError:
                    pass
        else:
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def work_root(ctx: ToolContext) -> Path:
    """The work tree (project root), symlinks resolved."""
    return Path(os.path.realpath(ctx.root or ctx.cwd))


def start_dir(ctx: ToolContext) -> Path:
    """The folder relative paths start from (where the user is), symlinks resolved."""
    return Path(os.path.realpath(ctx.cwd))


def allowed_roots(ctx: ToolContext) -> list[Path]:
    """The work tree, then each `--add-dir` folder: the only places tools may reach."""
    return [work_root(ctx), *(Path(os.path.realpath(d)) for d in ctx.extra_dirs)]


def containing_root(real: Path, ctx: ToolContext) -> Path | None:
    """The allowed root that holds `real` (a resolved path), or None."""
    for root in allowed_roots(ctx):
        if real == root or real.is_relative_to(root):
            return root
    return None


def resolve_in_tree(path: str, ctx: ToolContext) -> Path:
    """The real path (symlinks resolved) of `path`, which must lie inside the work tree or a
    folder added with --add-dir.

    Relative paths are taken from ctx.cwd; absolute ones must already point inside.
    """
    if path is None or not str(path).strip():
        raise ToolError("path must not be empty")
    if "\x00" in path:
        raise ToolError("The path contains a NUL byte; give a plain file path.")
    if path.startswith("~"):
        raise ToolError(
            f"The path {path} starts with '~', which is not expanded; give a path inside the work tree."
        )
    root = work_root(ctx)
    p = Path(path)
    joined = p if p.is_absolute() else Path(ctx.cwd) / p
    real = Path(os.path.realpath(joined))
    if containing_root(real, ctx) is not None:
        return real
    lexical = Path(os.path.normpath(os.path.abspath(joined)))
    for allowed in [Path(os.path.abspath(ctx.cwd)), *allowed_roots(ctx)]:
        if lexical.is_relative_to(allowed):
            raise ToolError(
                f"The path {path} goes through a symbolic link to {real}, which is outside the "
                f"work tree {root}; only files inside the work tree can be used."
            )
    extra = "".join(f", {d}" for d in allowed_roots(ctx)[1:])
    raise ToolError(
        f"The path {path} is outside the work tree {root}{extra}; only paths inside it can be "
        "used (relative paths are taken from the current folder; the user can add folders "
        "with --add-dir)."
    )


def display_path(p: Path, ctx: ToolContext) -> str:
    """How a path is shown to the model: relative to the current folder when it is in the
    work tree (with `..` when above it), else absolute (an --add-dir folder)."""
    here = start_dir(ctx)
    root = work_root(ctx)
    if p == here or p.is_relative_to(here):
        s = p.relative_to(here).as_posix()
        return s if s else "."
    if p == root or p.is_relative_to(root):
        return Path(os.path.relpath(p, here)).as_posix()
    return str(p)


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n}B"
    for unit in ("K", "M", "G", "T"):
        n /= 1024.0  # type: ignore[assignment]
        if n < 1024 or unit == "T":
            return f"{n:.1f}{unit}"
    return f"{n}B"  # pragma: no cover
