"""How Godwit words things for people: a tool call, a permission decision, a count.

The API's tool names (`str_replace_based_edit_tool`) and the runtime's bookkeeping words
(`callback`, `rule`) are for the model and the log; the terminal UI, line mode, `--verbose` and
the listings say "Edit calc.py?" and "allowed for this session" instead. Plain strings only, so
every front end can use it (nothing here imports a UI library).
"""

from __future__ import annotations

import re
from typing import Any

EDITOR = "str_replace_based_edit_tool"
BASH = "bash"
# What the approver answers for "allow for the rest of this session" (any other true value
# allows once); the decision's reason then says so.
SESSION_ALLOWED = "allowed for this session"


def count(n: int, word: str, plural: str | None = None) -> str:
    """`1 file`, `2 files`, `0 files`."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _code(text: str, width: int = 60) -> str:
    flat = " ".join(str(text).split())
    if len(flat) > width:
        flat = flat[: width - 1] + "…"
    return f"`{flat}`"


def tool_title(name: str, args: dict[str, Any]) -> str:
    """What a call does, as a short imperative: "Edit calc.py", "Run `pytest -q`"."""
    args = args if isinstance(args, dict) else {}
    path = str(args.get("path") or "")
    if name == EDITOR:
        verb = {"view": "Read", "create": "Write", "str_replace": "Edit", "insert": "Edit"}.get(
            str(args.get("command")), "Edit"
        )
        return f"{verb} {path}".strip()
    if name == BASH:
        if args.get("restart"):
            return "Restart the shell"
        return f"Run {_code(args.get('command', ''))}"
    if name == "memory":
        verb = {"view": "Read"}.get(str(args.get("command")), "Update")
        return f"{verb} memory {path}".strip()
    if name == "glob":
        return f"Find files {_code(args.get('pattern', ''))}"
    if name == "grep":
        where = f" in {path}" if path else ""
        return f"Search for {_code(args.get('pattern', ''))}{where}"
    if name.startswith("mcp__"):
        _, server, tool = (name.split("__", 2) + ["", ""])[:3]
        return f"Use {tool or name} ({server})"
    return f"Use {name}"


def tool_question(name: str, args: dict[str, Any]) -> str:
    """The approval question: "Edit calc.py?", "Run `pytest -q`?"."""
    return tool_title(name, args) + "?"


def decision_text(decision: str, source: str, reason: str) -> str | None:
    """One line for a permission decision, or None when it goes without saying (a read, or
    an edit the permission mode allows)."""
    if decision == "allow":
        if source == "callback":
            return "✓ " + (SESSION_ALLOWED if reason == SESSION_ALLOWED else "allowed by you")
        if source == "rule":
            return "✓ allowed by a permission rule"
        if source == "hook":
            return "✓ allowed by a hook"
        if "bypassPermissions" in reason:
            return "✓ allowed (bypass permissions mode)"
        return None
    if source == "callback":
        return "✗ denied by you" if "failed" not in reason else f"✗ denied: {reason}"
    if source == "headless":
        return "✗ denied: needs approval, and no one can be asked (headless run)"
    if source == "mode" and reason.startswith("plan mode"):
        return "✗ not allowed in plan mode (read-only)"
    return f"✗ {reason}" if reason.startswith("denied") else f"✗ denied: {reason}"


_OLD_LABEL = re.compile(r"^before (\w+): (.*)$")


def checkpoint_label(label: str) -> str:
    """A checkpoint's label for people: older logs say `before str_replace_based_edit_tool:
    str_replace`; newer ones already read `before edit calc.py`."""
    match = _OLD_LABEL.match(label)
    if match is None:
        return label
    tool, detail = match.groups()
    if tool == EDITOR:
        return f"before a file edit ({detail})"
    if tool == BASH:
        return f"before running {_code(detail)}"
    return f"before {tool}: {detail}"


def checkpoint_label_for(name: str, args: dict[str, Any]) -> str:
    """The label of the checkpoint taken before a call: "before edit calc.py"."""
    title = tool_title(name, args)
    return "before " + title[:1].lower() + title[1:]


_NEEDS_APPROVAL = re.compile(r"^\S+ needs approval in (\w+) mode$")


def approval_reason(name: str, reason: str) -> str:
    """Why a call is asked about, without the API's tool name."""
    match = _NEEDS_APPROVAL.match(reason)
    if match is None:
        return reason
    noun = {EDITOR: "file edits", BASH: "commands", "memory": "memory updates"}.get(name, "this")
    return f"{match.group(1)} mode asks before {noun}"


def session_scope(name: str, rules: list[str]) -> str:
    """What "allow for this session" will cover, from the rules it adds."""
    if name == EDITOR:
        return "all file edits"
    if name == BASH:
        commands = [r[len("bash(") : -1] for r in rules if r.startswith("bash(")]
        return ", ".join(_code(c, 30) for c in commands) or "all commands"
    return tool_title(name, {}).removeprefix("Use ")


def resume_hint(session_id: str) -> str:
    """What to type to come back to a session (printed when the UI or line mode ends)."""
    return (
        f"Session {session_id} is saved. Resume it with `godwit --continue` (the newest "
        f"here) or `godwit --resume {session_id}`."
    )
