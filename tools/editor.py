"""`str_replace_based_edit_tool`: view, create, str_replace and insert on files of the work tree.

Semantics follow Anthropic's text_editor_20250728 (the model is trained on them):

- `view` a file: numbered lines like `cat -n` (number right-aligned in 6 columns, a tab, the
  line); `view_range` [start, end], end -1 = to the end. Long output is truncated with a note
  saying which view_range shows the rest. `view` a directory: the entries two levels deep,
  hidden entries and node_modules skipped.
- `create`: writes `file_text`, creating parent folders. Over an existing file it replaces the
  content but keeps the file's permission bits, encoding, BOM and line-ending style.
- `str_replace`: `old_str` must occur exactly once, verbatim (no looser matching: a failed
  match only reports where a whitespace-insensitive match is, so the model can copy the text).
  `new_str` omitted = delete.
- `insert`: `insert_text` (or `new_str`, as older clients send) after line `insert_line`
  (0 = top).

Paths: relative to the work tree root (ctx.cwd); absolute paths only inside it; symlinks are
resolved before that check, and no file inside any `.git` folder is written (a repository's
config and hooks run commands). The resolved path is then opened one folder at a time from the
root without following links (tools/safe_fs.py), so a link swapped in after the check is
refused, not followed. Files keep their bytes: CRLF stays CRLF (the model's LF text is
matched against the LF-normalised content and written back with CRLF), a UTF-8 BOM stays,
Latin-1 files round-trip unchanged, the final newline (or its absence) is kept. Binary files are
refused. Writes are atomic (temp file + rename) and keep the permission bits.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from ._common import (
    BaseTool,
    TextDoc,
    ToolError,
    ToolInput,
    containing_root,
    decode_text,
    insert_at,
    ok,
    replace_once,
    resolve_in_tree,
    snippet,
    split_lines,
    view_lines,
    work_root,
)
from .base import ToolContext, ToolResult
from .edit_preview import new_file_lines, text_diff
from .safe_fs import PathChanged, read_at, replace_at, tree_dir

DEFAULT_MAX_VIEW_CHARS = 16_000
DEFAULT_MAX_VIEW_LINES = 2_000
MAX_DIR_ENTRIES = 1_000
MAX_EDIT_BYTES = 20_000_000


class EditorInput(ToolInput):
    command: Literal["view", "create", "str_replace", "insert"] = Field(
        description="view: show a file or directory; create: write a file; "
        "str_replace: replace one exact occurrence; insert: insert lines after a line number"
    )
    path: str = Field(
        description="File or directory path, relative to the work tree root (or absolute inside it)"
    )
    file_text: str | None = Field(None, description="create: the full content of the file")
    old_str: str | None = Field(
        None, description="str_replace: the exact text to replace; must occur exactly once"
    )
    new_str: str | None = Field(
        None, description="str_replace: the replacement (omit to delete old_str)"
    )
    insert_line: int | None = Field(
        None,
        description="insert: the line number after which to insert (0 = at the top of the file)",
    )
    insert_text: str | None = Field(None, description="insert: the text to insert")
    view_range: list[int] | None = Field(
        None,
        description="view: [start, end] line numbers, 1-based and inclusive; end -1 means to the end",
    )


@dataclass(frozen=True)
class _Loc:
    """A checked path: the work tree root and the names from it to the file."""

    root: Path
    parts: tuple[str, ...]

    @property
    def folder(self) -> tuple[str, ...]:
        return self.parts[:-1]

    @property
    def name(self) -> str:
        return self.parts[-1]


def load_text(target: Path, path: str) -> TextDoc:
    """The text file at `target` (`path` as the model gave it, for the error messages)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        raise ToolError(f"The path {path} does not exist. Use create to make a new file.") from None
    if stat.S_ISDIR(st.st_mode):
        raise ToolError(f"The path {path} is a directory; this command needs a file.")
    if not stat.S_ISREG(st.st_mode):
        raise ToolError(f"The path {path} is not a regular file.")
    if st.st_size > MAX_EDIT_BYTES:
        raise ToolError(
            f"{path} is {st.st_size} bytes, too large for this tool (limit {MAX_EDIT_BYTES}); use bash (sed, head) instead."
        )
    try:
        raw = target.read_bytes()
    except PermissionError:
        raise ToolError(f"Permission denied reading {path}.") from None
    return decode_text(raw, path)


def planned_text(a: EditorInput, doc: TextDoc) -> str:
    """The file's text after a `str_replace` or `insert` call (raises ToolError as the call would)."""
    if a.command == "insert":
        return _inserted(a, doc)[0]
    return _replaced(a, doc)[0]


def _replaced(a: EditorInput, doc: TextDoc) -> tuple[str, int, int]:
    if a.old_str is None:
        raise ToolError("Parameter old_str is required for command str_replace.")
    old = doc.normalise_input(a.old_str)
    new = doc.normalise_input(a.new_str or "")
    if old == new:
        raise ToolError("new_str is identical to old_str; there is nothing to change.")
    note = (
        " (Note: this file mixes CRLF and LF line endings, so old_str must reproduce them exactly.)"
        if doc.mixed
        else ""
    )
    return replace_once(doc.text, old, new, a.path, note=note)


def _inserted(a: EditorInput, doc: TextDoc) -> tuple[str, int, int]:
    if a.insert_line is None:
        raise ToolError(
            "Parameter insert_line is required for command insert (0 inserts at the top)."
        )
    text_in = a.insert_text if a.insert_text is not None else a.new_str
    if text_in is None:
        raise ToolError("Parameter insert_text is required for command insert.")
    return insert_at(doc.text, a.insert_line, doc.normalise_input(text_in), a.path)


class EditorTool(BaseTool):
    name: ClassVar[str] = "str_replace_based_edit_tool"
    input_model = EditorInput
    DESCRIPTION = (
        "View, create and edit files in the work tree.\n"
        "- view: a file is shown with line numbers (`cat -n` style); use view_range [start, end] "
        "(end -1 = to the end) for part of a long file. A directory is listed two levels deep.\n"
        "- create: write file_text to path (parent folders are created; an existing file is replaced).\n"
        "- str_replace: replace old_str with new_str. old_str must match exactly one place in the "
        "file, character for character including whitespace and indentation; include enough "
        "surrounding lines to make it unique. Omit new_str to delete.\n"
        "- insert: insert insert_text after line insert_line (0 = top of the file).\n"
        "Paths are relative to the work tree root. Do not include the line-number prefixes of "
        "view output in old_str."
    )

    def __init__(
        self,
        max_characters: int | None = None,
        *,
        max_view_lines: int = DEFAULT_MAX_VIEW_LINES,
    ) -> None:
        """`max_characters`: the view budget (also sent in the Anthropic spec when given)."""
        self.max_characters = max_characters
        self.max_view_chars = max_characters or DEFAULT_MAX_VIEW_CHARS
        self.max_view_lines = max_view_lines
        # Called between the path check and the file operation; tests swap a link in here.
        self.race_hook: Callable[[], None] | None = None

    def anthropic_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "text_editor_20250728", "name": self.name}
        if self.max_characters is not None:
            spec["max_characters"] = self.max_characters
        return spec

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return isinstance(args, dict) and args.get("command") == "view"

    # ------------------------------------------------------------------------------------------

    def _run(self, a: EditorInput, ctx: ToolContext) -> ToolResult:
        target = resolve_in_tree(a.path, ctx)
        # The fd-relative walk starts at the allowed root that holds the path (the work tree or
        # an --add-dir folder).
        root = containing_root(target, ctx) or work_root(ctx)
        loc = _Loc(root, target.relative_to(root).parts)
        if a.command != "view" and ".git" in loc.parts:
            raise ToolError(
                f"{a.path} is inside a .git folder, which is never written by this "
                "tool (use git commands)."
            )
        if self.race_hook is not None:
            self.race_hook()
        try:
            if a.command == "view":
                return self._view(a, target, loc)
            if a.command == "create":
                return self._create(a, target, loc)
            if a.command == "str_replace":
                return self._str_replace(a, loc)
            return self._insert(a, loc)
        except PathChanged:
            raise ToolError(
                f"The path {a.path} changed while it was being used (a folder or the "
                "file became a symbolic link); nothing was written. Check the path "
                "and try again."
            ) from None

    def _load(self, loc: _Loc, path: str) -> TextDoc:
        if not loc.parts:
            raise ToolError(f"The path {path} is a directory; this command needs a file.")
        try:
            with tree_dir(loc.root, loc.folder) as dfd:
                raw, _ = read_at(dfd, loc.name, MAX_EDIT_BYTES)
        except FileNotFoundError:
            raise ToolError(
                f"The path {path} does not exist. Use create to make a new file."
            ) from None
        except NotADirectoryError:
            raise ToolError(f"The path {path} does not exist (a parent of it is a file).") from None
        except IsADirectoryError:
            raise ToolError(f"The path {path} is a directory; this command needs a file.") from None
        except PermissionError:
            raise ToolError(f"Permission denied reading {path}.") from None
        except ValueError as e:
            raise ToolError(
                f"{path} is {e.args[0]} bytes, too large for this tool (limit {MAX_EDIT_BYTES}); use bash (sed, head) instead."
            ) from None
        except PathChanged as e:
            if e.errno == errno.EINVAL:
                raise ToolError(f"The path {path} is not a regular file.") from None
            raise
        return decode_text(raw, path)

    def _write(self, loc: _Loc, data: bytes, path: str, *, create_folders: bool = False) -> None:
        try:
            with tree_dir(loc.root, loc.folder, create=create_folders) as dfd:
                replace_at(dfd, loc.name, data)
        except (FileExistsError, NotADirectoryError):
            raise ToolError(
                f"Cannot create {path}: a parent of it is a file, not a directory."
            ) from None
        except IsADirectoryError:
            raise ToolError(f"The path {path} is a directory; create needs a file path.") from None
        except PermissionError:
            raise ToolError(f"Permission denied writing {path}.") from None

    # -- view ----------------------------------------------------------------------------------

    def _view(self, a: EditorInput, target: Path, loc: _Loc) -> ToolResult:
        if target.is_dir():
            if a.view_range is not None:
                raise ToolError(f"view_range only applies to files; {a.path} is a directory.")
            return ok(self._list_dir(target, a.path))
        doc = self._load(loc, a.path)
        lines = split_lines(doc.text)
        if doc.mixed:
            lines = [line.removesuffix("\r") for line in lines]
        return ok(
            view_lines(
                lines,
                a.view_range,
                a.path,
                max_chars=self.max_view_chars,
                max_lines=self.max_view_lines,
            )
        )

    def _list_dir(self, target: Path, path: str) -> str:
        entries: list[str] = []
        more = False
        base = path.rstrip("/") or "/"

        def walk(d: Path, rel: str, depth: int) -> None:
            nonlocal more
            try:
                names = sorted(os.listdir(d))
            except OSError:
                return
            for name in names:
                if name.startswith(".") or name == "node_modules":
                    continue
                if len(entries) >= MAX_DIR_ENTRIES:
                    more = True
                    return
                child = d / name
                child_rel = f"{rel}/{name}" if rel else name
                is_dir = child.is_dir() and not child.is_symlink()
                entries.append(f"{base.rstrip('/')}/{child_rel}" + ("/" if is_dir else ""))
                if is_dir and depth < 2:
                    walk(child, child_rel, depth + 1)

        walk(target, "", 1)
        head = f"Here are the files and directories up to 2 levels deep in {path}, excluding hidden items and node_modules:"
        body = "\n".join(entries) if entries else "(empty directory)"
        if more:
            body += f"\n[Listing cut at {MAX_DIR_ENTRIES} entries; view a subdirectory or use glob to see more.]"
        return f"{head}\n{body}"

    # -- create --------------------------------------------------------------------------------

    def _create(self, a: EditorInput, target: Path, loc: _Loc) -> ToolResult:
        if a.file_text is None:
            raise ToolError("Parameter file_text is required for command create.")
        if target.is_dir():
            raise ToolError(f"The path {a.path} is a directory; create needs a file path.")
        existed = target.exists()
        doc = TextDoc(text="")
        if existed:
            try:
                doc = self._load(loc, a.path)
            except ToolError:
                doc = TextDoc(text="")  # replacing a binary/odd file: write plain UTF-8
        # Over a CRLF file the model's LF text is written back with CRLF; otherwise as given.
        text = a.file_text.replace("\r\n", "\n") if doc.newline == "\r\n" else a.file_text
        data = doc.encode(text, a.path)
        self._write(loc, data, a.path, create_folders=True)
        n = len(split_lines(text))
        if existed:
            result = ok(f"File {a.path} overwritten with the new content ({n} lines).")
            result.diff = "\n".join(text_diff(a.path, doc.text, doc.normalise_input(text)))
        else:
            result = ok(f"File created successfully at: {a.path} ({n} lines).")
            result.diff = "\n".join(new_file_lines(a.path, text))
        return result

    # -- str_replace ---------------------------------------------------------------------------

    def _str_replace(self, a: EditorInput, loc: _Loc) -> ToolResult:
        if a.old_str is None:
            raise ToolError("Parameter old_str is required for command str_replace.")
        doc = self._load(loc, a.path)
        new_text, first, last = _replaced(a, doc)
        self._write(loc, doc.encode(new_text, a.path), a.path)
        return self._edited(a.path, doc.text, new_text, first, last)

    # -- insert --------------------------------------------------------------------------------

    def _insert(self, a: EditorInput, loc: _Loc) -> ToolResult:
        if a.insert_line is None:
            raise ToolError(
                "Parameter insert_line is required for command insert (0 inserts at the top)."
            )
        doc = self._load(loc, a.path)
        new_text, first, last = _inserted(a, doc)
        self._write(loc, doc.encode(new_text, a.path), a.path)
        return self._edited(a.path, doc.text, new_text, first, last)

    @staticmethod
    def _edited(path: str, before: str, text: str, first: int, last: int) -> ToolResult:
        result = ok(
            f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet of {path}:\n"
            f"{snippet(text, first, last)}\n"
            "Review the changes and make sure they are as expected. Edit the file again if necessary."
        )
        result.diff = "\n".join(text_diff(path, before, text))
        return result
