"""Who may run which tool call: modes, allow/deny/ask rules, and the approval callback.

Order of precedence: deny rules, then protected paths, then plan mode (read-only tools only),
then ask rules, then bypass mode, allow rules, read-only calls, acceptEdits for the editor;
whatever remains is asked. Asking goes to the approval callback (UI, SDK); with none (headless)
the call is refused with a message the model reads.

Shell commands are matched part by part (`a && b | c`), after normalising what does not change
their meaning (runs of blanks, grouping parentheses and braces, `env`/`command`/`nohup` prefixes).
Deny rules also look inside `$(...)`, backticks and `bash -c '...'`; an allow rule never covers
a command with such nesting or one that redirects output into a file. A deny list for a shell
is a speed bump, not a sandbox: a determined model can spell a command in ways no prefix rule
anticipates, which is why commands are asked about by default.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Literal

from agent.errors import ConfigError
from agent.mcp.rules import check_rule, is_mcp_rule, rule_matches
from agent.settings import PermissionMode, PermissionRules

EDITOR = "str_replace_based_edit_tool"
EDIT_TOOLS = {EDITOR, "memory"}
BASH_TOOLS = {"bash"}
# Names users know from other agents, folded to ours (case-insensitive).
_ALIASES = {"edit": EDITOR, "write": EDITOR, "multiedit": EDITOR, "read": EDITOR,
            "str_replace_based_edit_tool": EDITOR, "bash": "bash", "glob": "glob",
            "grep": "grep", "memory": "memory"}
# Shell syntax that joins commands: every part must be allowed on its own.
_SPLIT = re.compile(r"&&|\|\||;|\||\n|(?<![<>&])&(?![>&])")
_NESTED = re.compile(r"\$\(|`|<\(|>\(")
_INNER = re.compile(r"\$\(([^()]*)\)|`([^`]*)`|<\(([^()]*)\)|>\(([^()]*)\)")
# Redirections that write nowhere in the tree; any other `>` writes a file.
_HARMLESS_REDIRECT = re.compile(r"\d?>&\d|&?\d?>\s*/dev/null")
_WRAPPERS = {"env", "command", "builtin", "exec", "nohup", "time", "nice", "stdbuf"}


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
        if is_mcp_rule(text):
            # `mcp__server`, `mcp__server__tool`, wildcards: Claude Code's MCP rule forms.
            return cls(check_rule(text, "any"), None)
        m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*", text, re.S)
        if not m:
            raise ConfigError(f"Bad permission rule {text!r}: use TOOL or TOOL(PATTERN)")
        tool = m.group(1)
        return cls(_ALIASES.get(tool.lower(), tool), m.group(2))

    def matches(self, tool: str, args: dict[str, Any], cwd: Path | None = None) -> bool:
        if is_mcp_rule(self.tool):
            return rule_matches(self.tool, tool)
        if self.tool != tool:
            return False
        if self.pattern is None or self.pattern in ("", "*"):
            return True
        if tool in BASH_TOOLS:
            return _command_matches(self.pattern, str(args.get("command", "")))
        path = args.get("path") or args.get("old_path") or ""
        return fnmatch.fnmatch(tree_path(str(path), cwd), self.pattern.lstrip("./"))


def tree_path(path: str, cwd: Path | None) -> str:
    """A path as the work tree sees it: `./a/../b`, `/abs/tree/b` and `b` are all `b`."""
    if cwd is None:
        return os.path.normpath(path).lstrip("/")
    full = os.path.normpath(os.path.join(str(cwd), path))
    rel = os.path.relpath(full, str(cwd))
    return rel if not rel.startswith("..") else full


def _normalise(command: str) -> str:
    """Blanks collapsed; grouping `( )` / `{ }` and harmless wrappers taken off the front."""
    words = command.split()
    while words and words[0] in ("(", "{"):
        words.pop(0)
    while words and words[-1] in (")", "}", "};"):
        words.pop()
    if words:
        words[0] = words[0].lstrip("({")
        words[-1] = words[-1].rstrip(")}") or words[-1]
    while words and (words[0] in _WRAPPERS or re.fullmatch(r"[A-Za-z_]\w*=\S*", words[0])):
        words.pop(0)
    return " ".join(w for w in words if w)


def _command_matches(pattern: str, command: str) -> bool:
    """`git status` matches that command and its arguments (a word boundary follows); a
    trailing `:*` or `*` is a plain prefix (`npm run test:*` matches `npm run test:unit`)."""
    command = _normalise(command)
    if pattern.endswith("*"):
        prefix = " ".join((pattern[:-2] if pattern.endswith(":*") else pattern[:-1]).split())
        return command.startswith(prefix)
    prefix = " ".join(pattern.split())
    return command == prefix or command.startswith(prefix + " ")


def split_command(command: str) -> list[str]:
    """The simple commands inside a compound one (`a && b | c` -> [a, b, c])."""
    return [part.strip() for part in _SPLIT.split(command) if part.strip()]


def every_command(command: str) -> list[str]:
    """Every simple command, including those nested in $(...), backticks and `sh -c '...'`."""
    out: list[str] = []
    pending = [command]
    while pending and len(out) < 256:
        text = pending.pop()
        for m in _INNER.finditer(text):
            pending.append(next(g for g in m.groups() if g is not None))
        for part in split_command(_INNER.sub(" ", text)):
            out.append(part)
            inner = _shell_c(part)
            if inner:
                pending.append(inner)
    return out


def _shell_c(part: str) -> str | None:
    """The script of `bash -c '...'` (or sh, zsh, dash), if `part` is one."""
    try:
        words = shlex.split(_normalise(part))
    except ValueError:
        return None
    if len(words) >= 3 and os.path.basename(words[0]) in ("bash", "sh", "zsh", "dash") \
            and words[1] == "-c":
        return words[2]
    return None


def writes_files(command: str) -> bool:
    """True when the command redirects output into a file."""
    return ">" in _HARMLESS_REDIRECT.sub(" ", command)


class PermissionPolicy:
    """Decides allow / deny / ask for a tool call; pure, so it is easy to test."""

    def __init__(self, mode: PermissionMode, rules: PermissionRules, *, cwd: Path | None = None,
                 tools: Iterable[str] | None = None) -> None:
        self.mode = mode
        self.cwd = Path(cwd).resolve() if cwd is not None else None
        for rule in rules.allow:
            if is_mcp_rule(rule):
                check_rule(rule, "allow")  # an allow rule must name its server
        self.allow = [Rule.parse(r) for r in rules.allow]
        self.deny = [Rule.parse(r) for r in rules.deny]
        self.ask = [Rule.parse(r) for r in rules.ask]
        if tools is not None:
            known = set(tools)
            # MCP servers come and go (one may fail to start): their rules are not checked.
            unknown = sorted({r.tool for r in self.allow + self.deny + self.ask
                              if not is_mcp_rule(r.tool)} - known)
            if unknown:
                raise ConfigError(f"Permission rules name unknown tool(s) {', '.join(unknown)}; "
                                  f"the tools are {', '.join(sorted(known))}.")

    def check(self, tool: str, args: dict[str, Any], read_only: bool) -> Verdict:
        bash = tool in BASH_TOOLS and isinstance(args.get("command"), str)
        deny_parts = self._parts(args, every_command) if bash else [args]
        for part in deny_parts:
            for rule in self.deny:
                if rule.matches(tool, part, self.cwd):
                    return Verdict("deny", f"denied by rule {_show(rule)}", "rule")
        protected = self._protected(tool, args, read_only)
        if protected is not None:
            return protected
        if self.mode == "plan" and not read_only:
            return Verdict("deny", "plan mode allows read-only tools only; present the plan "
                           "instead of making changes", "mode")
        parts = self._parts(args, split_command) if bash else [args]
        for rule in self.ask:
            if any(rule.matches(tool, part, self.cwd) for part in deny_parts):
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

    def _protected(self, tool: str, args: dict[str, Any], read_only: bool) -> Verdict | None:
        """The user's git metadata is never edited by the editor; Godwit's own project
        settings (which could widen permissions) are always asked about."""
        if tool != EDITOR or read_only:
            return None
        path = tree_path(str(args.get("path") or ""), self.cwd)
        if path == ".git" or path.startswith(".git/"):
            return Verdict("deny", "files inside .git are not edited directly; use git commands",
                           "protected")
        if (path == ".godwit" or path.startswith(".godwit/")) and self.mode != "bypassPermissions":
            return Verdict("ask", "changes to .godwit/ (Godwit's project settings) are always "
                           "confirmed", "protected")
        return None

    @staticmethod
    def _parts(args: dict[str, Any], splitter) -> list[dict[str, Any]]:
        pieces = splitter(args["command"])
        return [{**args, "command": p} for p in pieces] or [args]

    def _allowed_by_rules(self, tool: str, args: dict[str, Any], parts: list[dict]) -> bool:
        if tool in BASH_TOOLS:
            command = str(args.get("command", ""))
            whole_tool = any(r.tool == tool and r.pattern in (None, "", "*") for r in self.allow)
            # Nesting could run anything and a redirection writes files: a prefix rule covers
            # neither, only a rule for the whole tool does.
            if _NESTED.search(command) or writes_files(command) or any(
                    _shell_c(p["command"]) for p in parts):
                return whole_tool
            return all(any(r.matches(tool, p, self.cwd) for r in self.allow) for p in parts)
        return any(r.matches(tool, args, self.cwd) for r in self.allow)


def _show(rule: Rule) -> str:
    return rule.tool if rule.pattern is None else f"{rule.tool}({rule.pattern})"
