"""Godwit's tools as a Claude Code hook expects to see them, and back.

A hook written for Claude Code matches `Bash`, `Read`, `Write`, `Edit`, `Glob`, `Grep` and reads
`tool_input.command` or `tool_input.file_path`. Godwit's tools have the names the model was
trained on (`bash`, `str_replace_based_edit_tool`, ...), so a hook is shown the Claude Code name
of the call and an input carrying Claude Code's keys beside Godwit's own; a matcher may use
either name. An `updatedInput` coming back is mapped onto Godwit's keys again.
"""

from __future__ import annotations

from typing import Any

EDITOR = "str_replace_based_edit_tool"
_EDITOR_NAMES = {"view": "Read", "create": "Write", "str_replace": "Edit", "insert": "Edit"}
# Claude Code key -> Godwit key, for the editor.
_EDITOR_KEYS = {
    "file_path": "path",
    "content": "file_text",
    "old_string": "old_str",
    "new_string": "new_str",
}
_SIMPLE = {"bash": "Bash", "glob": "Glob", "grep": "Grep"}


def claude_name(tool: str, args: dict[str, Any]) -> str:
    """The tool's name in Claude Code (its own name when Claude Code has no such tool)."""
    if tool == EDITOR:
        return _EDITOR_NAMES.get(str(args.get("command")), "Edit")
    return _SIMPLE.get(tool, tool)


def hook_input(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """The call's input with Claude Code's keys added where Godwit's differ."""
    out = dict(args)
    if tool == EDITOR:
        for cc_key, key in _EDITOR_KEYS.items():
            if key in args:
                out[cc_key] = args[key]
        if args.get("command") == "insert":
            out.setdefault("old_string", "")
            out["new_string"] = args.get("insert_text", "")
    return out


def from_hook(tool: str, sent: dict[str, Any], updated: dict[str, Any]) -> dict[str, Any]:
    """A hook's `updatedInput` as Godwit's input: a Claude Code key the hook changed wins over
    Godwit's key; the added Claude Code keys are taken off again."""
    out = dict(updated)
    if tool == EDITOR:
        for cc_key, key in _EDITOR_KEYS.items():
            if cc_key in out:
                value = out.pop(cc_key)
                if value != sent.get(cc_key) or key not in out:
                    out[key] = value
        if sent.get("command") == "insert":
            # An insert was shown as an Edit of "" to insert_text; only the new text maps back.
            new = out.pop("new_str", None)
            out.pop("old_str", None)
            if new is not None and new != sent.get("new_string"):
                out["insert_text"] = new
    return out
