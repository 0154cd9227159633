"""What an edit changes, as a person reads it: a unified diff with the file's real line numbers.

The editor's calls carry only the replaced text (`old_str`, `new_str`) or a line number, so a diff
made from the arguments alone starts at "line 1" whatever the place. These functions work on the
file: `preview_edit` before the call runs (approval prompts), `text_diff` on the before and after
text the editor already has (the result of a call that ran).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ._common import ToolError, resolve_in_tree, split_lines
from .base import ToolContext

# Unchanged lines shown around a change, as `git diff` and `diff -u` show by default.
CONTEXT_LINES = 3
# A new file's preview shows this many lines, then "… N more lines".
NEW_FILE_LINES = 40

_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


@dataclass(frozen=True)
class EditPreview:
    """One editor call's effect: the diff lines (no trailing newlines), or why it would fail."""

    path: str
    command: str
    new_file: bool = False
    lines: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    # Set when the call would fail (old_str not found, a missing file, ...): the tool's words.
    error: str | None = None

    def text(self) -> str:
        """The diff as one string (empty when there is none)."""
        return "\n".join(self.lines)


def text_diff(path: str, before: str, after: str, *, context: int = CONTEXT_LINES) -> list[str]:
    """`diff -u` of two versions of one file, hunk headers numbered as in the file.

    Only the span between the first and the last differing line (plus context) goes through
    difflib, so a one-line edit of a 100,000-line file costs a scan, not a full sequence match.
    """
    old, new = split_lines(before), split_lines(after)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old), len(new)) - head
        and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]
    ):
        tail += 1
    if head == len(old) == len(new):
        return []
    start = max(0, head - context)
    old_span = old[start : len(old) - max(0, tail - context)]
    new_span = new[start : len(new) - max(0, tail - context)]
    lines = []
    for line in difflib.unified_diff(
        old_span, new_span, f"a/{path}", f"b/{path}", n=context, lineterm=""
    ):
        lines.append(_shift_hunk(line, start))
    return lines


def _shift_hunk(line: str, offset: int) -> str:
    """A hunk header of a diff taken from line `offset + 1` on, renumbered for the whole file."""
    match = _HUNK.match(line)
    if not match or offset == 0:
        return line
    old_start, old_len, new_start, new_len = match.groups()
    return (
        f"@@ -{int(old_start) + offset}{old_len or ''} "
        f"+{int(new_start) + offset}{new_len or ''} @@{line[match.end() :]}"
    )


def new_file_lines(path: str, text: str, *, limit: int = NEW_FILE_LINES) -> list[str]:
    """A file about to be created: its first `limit` lines as additions."""
    body = split_lines(text)
    lines = [f"+++ b/{path} (new file, {len(body)} line{'' if len(body) == 1 else 's'})"]
    lines += [f"+{line}" for line in body[:limit]]
    if len(body) > limit:
        lines.append(f"… {len(body) - limit} more lines")
    return lines


def preview_edit(args: dict[str, Any], ctx: ToolContext) -> EditPreview:
    """What `str_replace_based_edit_tool` would do with `args` to the files under `ctx.cwd`.

    Nothing is written. A call that would fail gives a preview with `error` set (the same words
    the tool would answer), so an approval prompt can say so instead of showing a wrong diff.
    """
    from .editor import EditorInput, load_text, planned_text

    command, path = str(args.get("command", "")), str(args.get("path", ""))
    try:
        call = EditorInput.model_validate(args)
        target = resolve_in_tree(call.path, ctx)
        exists = target.exists()
        doc = load_text(target, call.path) if exists and call.command != "create" else None
        if call.command == "create" and not exists:
            lines = new_file_lines(path, call.file_text or "")
            return EditPreview(
                path,
                command,
                new_file=True,
                lines=lines,
                added=len(split_lines(call.file_text or "")),
            )
        if call.command == "create":
            try:
                before = load_text(target, call.path).text
            except ToolError:
                before = ""
            after = call.file_text or ""
        else:
            if doc is None:
                raise ToolError(f"The path {path} does not exist. Use create to make a new file.")
            before, after = doc.text, planned_text(call, doc)
    except ToolError as exc:
        return EditPreview(path, command, error=str(exc))
    except ValidationError as exc:
        return EditPreview(path, command, error=f"Invalid input: {exc.errors()[0]['msg']}")
    lines = text_diff(path, before, after)
    return EditPreview(
        path,
        command,
        lines=lines,
        added=sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++")),
        removed=sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---")),
    )
