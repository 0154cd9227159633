"""Who may run which tool call: modes, allow/deny/ask rules, and the approval callback.

Order of precedence: deny rules, then plan mode (read-only tools only), then ask rules, then
bypass mode, allow rules, read-only calls, acceptEdits for the editor; whatever remains is asked.
Asking goes to the approval callback (UI, SDK); with none (headless) the call is refused with a
message the model reads.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal

from agent.settings import PermissionMode, PermissionRules

EDIT_TOOLS = {"str_replace_based_edit_tool", "memory"}
BASH_TOOLS = {"bash"}
# Aliases users know from other agents.
_ALIASES = {"edit": "str_replace_based_edit_tool", "write": "str_replace_based_edit_tool",
            "bash": "bash", "glob": "glob", "grep": "grep", "memory": "memory"}
# Shell syntax that joins or nests commands: every part must be allowed on its own.
_SPLIT = re.compile(r"&&|\|\||;|\||\n|(?<![<>&])&(?![>&])")
_NESTED = re.compile(r"\$\(|`|<\(|>\(")


@dataclass
class Verdict:
    decision: Literal["allow", "deny", "ask"]
    reason: str
    source: str


Approver = Callable[[str, dict[str, Any], str], Awaitable[bool] | bool]


@dataclass(frozen=True)
class Rule:
    tool: str
    pattern: str | None

    @classmethod
    def parse(cls, text: str) -> "Rule":
        m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*", text, re.S)
        if not m:
            from agent.errors import ConfigError

            raise ConfigError(f"Bad permission rule {text!r}: use TOOL or TOOL(PATTERN)")
        tool = m.group(1)
        return cls(_ALIASES.get(tool.lower(), tool), m.group(2))

    def matches(self, tool: str, args: dict[str, Any]) -> bool:
        if self.tool != tool:
            return False
        if self.pattern is None or self.pattern in ("", "*"):
            return True
        if tool in BASH_TOOLS:
            return _command_matches(self.pattern, str(args.get("command", "")))
        path = args.get("path") or args.get("old_path") or ""
        return fnmatch.fnmatch(str(path), self.pattern)


def _command_matches(pattern: str, command: str) -> bool:
    """`git status` matches that command and its arguments (a word boundary follows); a
    trailing `:*` or `*` is a plain prefix (`npm run test:*` matches `npm run test:unit`)."""
    command = command.strip()
    if pattern.endswith("*"):
        prefix = pattern[:-2] if pattern.endswith(":*") else pattern[:-1]
        return command.startswith(prefix.strip())
    prefix = pattern.strip()
    return command == prefix or (command.startswith(prefix) and command[len(prefix)].isspace())


def split_command(command: str) -> list[str]:
    """The simple commands inside a compound one (`a && b | c` -> [a, b, c])."""
    return [part.strip() for part in _SPLIT.split(command) if part.strip()]


class PermissionPolicy:
    """Decides allow / deny / ask for a tool call; pure, so it is easy to test."""

    def __init__(self, mode: PermissionMode, rules: PermissionRules) -> None:
        self.mode = mode
        self.allow = [Rule.parse(r) for r in rules.allow]
        self.deny = [Rule.parse(r) for r in rules.deny]
        self.ask = [Rule.parse(r) for r in rules.ask]

    def check(self, tool: str, args: dict[str, Any], read_only: bool) -> Verdict:
        parts = self._parts(tool, args)
        for part in parts:
            for rule in self.deny:
                if rule.matches(tool, part):
                    return Verdict("deny", f"denied by rule {_show(rule)}", "rule")
        if self.mode == "plan" and not read_only:
            return Verdict("deny", "plan mode allows read-only tools only; present the plan "
                           "instead of making changes", "mode")
        for rule in self.ask:
            if any(rule.matches(tool, part) for part in parts):
                return Verdict("ask", f"rule {_show(rule)} asks", "rule")
        if self.mode == "bypassPermissions":
            return Verdict("allow", "bypassPermissions mode", "mode")
        if read_only:
            return Verdict("allow", "read-only", "mode")
        if self._allowed_by_rules(tool, args, parts):
            return Verdict("allow", "allowed by rule", "rule")
        if self.mode == "acceptEdits" and tool in EDIT_TOOLS:
            return Verdict("allow", "acceptEdits mode", "mode")
        return Verdict("ask", f"{tool} needs approval in {self.mode} mode", "mode")

    def _parts(self, tool: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        if tool in BASH_TOOLS and isinstance(args.get("command"), str):
            pieces = split_command(args["command"])
            return [{**args, "command": p} for p in pieces] or [args]
        return [args]

    def _allowed_by_rules(self, tool: str, args: dict[str, Any], parts: list[dict]) -> bool:
        if tool in BASH_TOOLS:
            # Nested commands ($(...), backticks) could run anything: never allowed by prefix.
            if _NESTED.search(str(args.get("command", ""))):
                return any(r.tool == tool and r.pattern in (None, "", "*") for r in self.allow)
            return all(any(r.matches(tool, p) for r in self.allow) for p in parts)
        return any(r.matches(tool, args) for r in self.allow)


def _show(rule: Rule) -> str:
    return rule.tool if rule.pattern is None else f"{rule.tool}({rule.pattern})"
