"""Plain text for the UI: how a tool call, a result, an edit or a number is shown.

No Textual here (only Rich's Text), so these are easy to test and reuse.
"""

from __future__ import annotations

import difflib
from typing import Any

from rich.text import Text

# Lines of a tool result shown before "… +N lines".
PREVIEW_LINES = 4
_EDIT = "str_replace_based_edit_tool"


def key_argument(name: str, args: dict[str, Any]) -> str:
    """The one argument that says what a call does: the command, the path, the pattern."""
    if name == _EDIT or name == "memory":
        command, path = args.get("command", ""), args.get("path", "")
        return f"{command} {path}".strip()
    for key in ("command", "path", "pattern", "query"):
        value = args.get(key)
        if isinstance(value, str) and value:
            return value
    return ", ".join(f"{k}={v!r}" for k, v in list(args.items())[:3])


def one_line(text: str, width: int = 100) -> str:
    """`text` flattened to one line of at most `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def preview(content: str, lines: int = PREVIEW_LINES) -> tuple[str, int]:
    """The first `lines` lines of a result and how many lines were left out."""
    all_lines = content.rstrip("\n").splitlines() or [""]
    shown = all_lines[:lines]
    return "\n".join(shown), max(0, len(all_lines) - len(shown))


def compact_number(n: float) -> str:
    """12345 -> 12.3k, 200_000 -> 200k, 2_500_000 -> 2.5M (the status bar is narrow)."""
    n = float(n)
    for scale, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= scale:
            value = f"{n / scale:.1f}".removesuffix(".0")
            return value + suffix
    return f"{n:.0f}"


def edit_diff(args: dict[str, Any]) -> Text:
    """An editor call as the user should judge it: a coloured diff or the new text."""
    command = args.get("command")
    path = str(args.get("path", ""))
    if command == "str_replace":
        old = str(args.get("old_str", "")).splitlines()
        new = str(args.get("new_str", "") or "").splitlines()
        lines = list(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", lineterm="", n=2))
        return _diff_text(lines)
    if command == "create":
        body = str(args.get("file_text", ""))
        return _diff_text([f"+++ {path} (new file)"] + [f"+{line}" for line in body.splitlines()])
    if command == "insert":
        body = str(args.get("insert_text") or args.get("new_str") or "")
        head = f"@@ {path}: after line {args.get('insert_line')} @@"
        return _diff_text([head] + [f"+{line}" for line in body.splitlines()])
    return Text(one_line(str(args), 400))


def _diff_text(lines: list[str]) -> Text:
    text = Text()
    for line in lines:
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = ""
        text.append(line + "\n", style=style)
    text.rstrip()
    return text


def diff_text(patch: str) -> Text:
    """A unified diff (as `Agent.diff()` gives it) coloured line by line."""
    return _diff_text(patch.splitlines())
