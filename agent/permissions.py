"""Who may run which tool call: modes, allow/deny/ask rules, and the approval callback.

Order of precedence: deny rules, then protected paths, then plan mode (read-only tools only),
then ask rules, then bypass mode, read-only calls, allow rules, acceptEdits for the editor;
whatever remains is asked. Asking goes to the approval callback (UI, SDK); with none (headless)
the call is refused with a message the model reads.

Rule names mean what they mean in Claude Code: `Read` is the editor's `view` (and, as a deny
or ask rule, glob and grep over that path too), `Write` its `create`, `MultiEdit` its
`str_replace` and `insert`, `Edit` every command that changes a file (Claude Code applies Edit
rules to all its file-editing tools, Write included); `Bash(...)`, `Glob`, `Grep` and the tools'
own names (`str_replace_based_edit_tool`, `bash`, `memory`) the whole tool.

Paths in rules and protections are checked as typed and as resolved (symbolic links followed):
a rule or a protection that matches either one applies, and an allow rule must match both.
Every `.git` folder at any depth is protected (a nested repository's config can run commands),
and so is `.godwit` (Godwit's own settings, which could widen permissions).

Bash: an allow rule covers a command only when every simple command in it is exactly what the
rule names (`Bash(npm run build)`) or starts with it (`Bash(npm run test:*)`), with nothing else
in its text: no `VAR=value` in front, no substitution or expansion, no redirection except into
/dev/null itself. Deny and ask rules match any part, look inside `$(...)`, backticks and
`bash -c '...'`, and see through quotes, backslashes, `/usr/bin/` and wrappers. That is a
convenience, not a boundary: a determined model can spell a command in ways no text rule
anticipates; the bash sandbox (tools/sandbox.py) is the boundary.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.errors import ConfigError
from agent.mcp.rules import check_rule, is_mcp_rule, rule_matches
from agent.settings import PermissionMode, PermissionRules
from tools.shell_text import (
    NESTED,
    canonical_words,
    every_command,
    plain_words,
    shell_c,
    split_command,
    strip_harmless_redirects,
    writes_files,
)

__all__ = [
    "BASH_TOOLS",
    "EDITOR",
    "EDIT_TOOLS",
    "PermissionPolicy",
    "Rule",
    "Verdict",
    "every_command",
    "split_command",
    "tree_path",
    "writes_files",
]

EDITOR = "str_replace_based_edit_tool"
EDIT_TOOLS = {EDITOR, "memory"}
BASH_TOOLS = {"bash"}
PATH_TOOLS = {EDITOR, "glob", "grep"}
_WRITE_COMMANDS = frozenset({"create", "str_replace", "insert"})
# Claude Code's names (case-insensitive) -> (our tool, the editor commands they cover or None
# for the whole tool).
_NAMES: dict[str, tuple[str, frozenset[str] | None]] = {
    "read": (EDITOR, frozenset({"view"})),
    "write": (EDITOR, frozenset({"create"})),
    "multiedit": (EDITOR, frozenset({"str_replace", "insert"})),
    "edit": (EDITOR, _WRITE_COMMANDS),
    "str_replace_based_edit_tool": (EDITOR, None),
    "bash": ("bash", None),
    "glob": ("glob", None),
    "grep": ("grep", None),
    "memory": ("memory", None),
}


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
    commands: frozenset[str] | None = None  # editor commands a Read/Write/Edit rule covers
    name: str = ""  # the tool name as written, for messages
    text: str = ""  # the whole rule as written

    @classmethod
    def parse(cls, text: str) -> Rule:
        if is_mcp_rule(text):
            # `mcp__server`, `mcp__server__tool`, wildcards: Claude Code's MCP rule forms.
            return cls(check_rule(text, "any"), None, None, text.strip(), text)
        m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*", text, re.DOTALL)
        if not m:
            raise ConfigError(f"Bad permission rule {text!r}: use TOOL or TOOL(PATTERN)")
        tool = m.group(1)
        canonical, commands = _NAMES.get(tool.lower(), (tool, None))
        return cls(canonical, m.group(2), commands, tool, text)

    def covers_tool(self, tool: str, args: dict[str, Any], *, reading_too: bool = False) -> bool:
        """Whether the rule's name covers this call (its pattern aside). `reading_too`: a
        Read rule also covers glob and grep (deny and ask rules, as in Claude Code)."""
        if is_mcp_rule(self.tool):
            return rule_matches(self.tool, tool)
        if (
            self.commands is not None
            and self.commands == {"view"}
            and reading_too
            and tool in ("glob", "grep")
        ):
            return True
        if self.tool != tool:
            return False
        return self.commands is None or args.get("command") in self.commands

    def matches(
        self,
        tool: str,
        args: dict[str, Any],
        cwd: Path | None = None,
        *,
        exact: bool = False,
        reading_too: bool = False,
    ) -> bool:
        """Deny/ask matching by default (prefix, disguises seen through); `exact`: allow
        matching, which must cover the whole command and every path the call touches."""
        if not self.covers_tool(tool, args, reading_too=reading_too):
            return False
        if self.pattern is None or self.pattern in ("", "*"):
            return True
        if tool in BASH_TOOLS:
            command = str(args.get("command", ""))
            if exact:
                return _allow_part(self.pattern, command)
            return _deny_covers(self.pattern, command)
        paths = call_paths(tool, args, cwd)
        if not paths:
            return False
        pattern = self.pattern.removeprefix("./")
        hits = [fnmatch.fnmatch(p, pattern) for p in paths]
        return all(hits) if exact else any(hits)

    def show(self) -> str:
        name = self.name or self.tool
        return name if self.pattern is None else f"{name}({self.pattern})"


def tree_path(path: str, cwd: Path | None) -> str:
    """A path as the work tree sees it: `./a/../b`, `/abs/tree/b` and `b` are all `b`."""
    if cwd is None:
        return os.path.normpath(path).lstrip("/")
    full = os.path.normpath(os.path.join(str(cwd), path))
    rel = os.path.relpath(full, str(cwd))
    return rel if not rel.startswith("..") else full


def resolved_tree_path(path: str, cwd: Path | None) -> str:
    """Like `tree_path`, with every symbolic link on the way followed (as a write would)."""
    if cwd is None:
        return tree_path(path, cwd)
    full = os.path.realpath(os.path.join(str(cwd), path))
    rel = os.path.relpath(full, str(cwd))
    return rel if rel != ".." and not rel.startswith("../") else full


def call_paths(tool: str, args: dict[str, Any], cwd: Path | None) -> list[str]:
    """The paths a call names, as typed and resolved (both, when they differ)."""
    raw = args.get("path") or args.get("old_path") or ""
    if not isinstance(raw, str) or "\x00" in raw:
        return []
    if tool not in PATH_TOOLS:
        return [tree_path(raw, cwd)] if raw else []
    raw = raw or "."
    out = [tree_path(raw, cwd)]
    resolved = resolved_tree_path(raw, cwd)
    if resolved not in out:
        out.append(resolved)
    return out


def _command_matches(pattern: str, command: str) -> bool:
    """Allow matching of one simple command: `Bash(npm run build)` is that command exactly,
    `Bash(npm run test:*)` (or a trailing `*`) a prefix followed by the end, a blank or `:`
    (so `Bash(ls:*)` covers `ls -la`, not `lsof`)."""
    if pattern.endswith(":*"):
        prefix = " ".join(pattern[:-2].split())
        return command == prefix or command.startswith((prefix + " ", prefix + ":"))
    if pattern.endswith("*"):
        return command.startswith(" ".join(pattern[:-1].split()))
    return command == " ".join(pattern.split())


def _allow_part(pattern: str, part: str) -> bool:
    """Allow matching of one simple command: nothing but plain words (no assignment in front,
    no expansion, no redirection except into /dev/null itself), which the pattern names."""
    if plain_words(part) is None or shell_c(part):
        return False
    return _command_matches(pattern, strip_harmless_redirects(part))


def _deny_covers(pattern: str, part: str) -> bool:
    """A deny or ask rule: a prefix at a word boundary of the part, as typed (blanks
    collapsed) or with its disguises removed (`canonical_words`)."""
    plain_prefix = pattern.endswith("*") and not pattern.endswith(":*")
    core = pattern[:-2] if pattern.endswith(":*") else pattern.rstrip("*")
    wants = {" ".join(core.split()), " ".join(canonical_words(core))} - {""}
    forms = {" ".join(part.split()), " ".join(canonical_words(part))}
    for form in forms:
        for want in wants:
            if form == want or form.startswith((want + " ", want + ":")):
                return True
            if plain_prefix and form.startswith(want):
                return True
    return False


class PermissionPolicy:
    """Decides allow / deny / ask for a tool call; pure, so it is easy to test."""

    def __init__(
        self,
        mode: PermissionMode,
        rules: PermissionRules,
        *,
        cwd: Path | None = None,
        tools: Iterable[str] | None = None,
        sandboxed: bool = False,
    ) -> None:
        """`sandboxed`: bash runs in the OS sandbox (tools/sandbox.py), so in default and
        acceptEdits modes its commands need no approval (they cannot escape it)."""
        self.mode = mode
        self.sandboxed = sandboxed
        self.cwd = Path(cwd).resolve() if cwd is not None else None
        for rule in rules.allow:
            if is_mcp_rule(rule):
                check_rule(rule, "allow")  # an allow rule must name its server
        self.allow = [Rule.parse(r) for r in rules.allow]
        self._project_only = list(getattr(rules, "project_only_allow", []) or [])
        self.deny = [Rule.parse(r) for r in rules.deny]
        self.ask = [Rule.parse(r) for r in rules.ask]
        if tools is not None:
            known = set(tools)
            # MCP servers come and go (one may fail to start): their rules are not checked.
            unknown = sorted(
                {r.tool for r in self.allow + self.deny + self.ask if not is_mcp_rule(r.tool)}
                - known
            )
            if unknown:
                raise ConfigError(
                    f"Permission rules name unknown tool(s) {', '.join(unknown)}; "
                    f"the tools are {', '.join(sorted(known))}."
                )

    def check(self, tool: str, args: dict[str, Any], read_only: bool) -> Verdict:
        bash = tool in BASH_TOOLS and isinstance(args.get("command"), str)
        deny_parts = self._parts(args, every_command) if bash else [args]
        for part in deny_parts:
            for rule in self.deny:
                if rule.matches(tool, part, self.cwd, reading_too=True):
                    return Verdict("deny", f"denied by rule {rule.show()}", "rule")
        protected = self._protected(tool, args, read_only)
        if protected is not None:
            return protected
        if self.mode == "plan" and not read_only:
            return Verdict(
                "deny",
                "plan mode allows read-only tools only; present the plan instead of making changes",
                "mode",
            )
        for rule in self.ask:
            if any(rule.matches(tool, part, self.cwd, reading_too=True) for part in deny_parts):
                return Verdict("ask", f"rule {rule.show()} asks", "rule")
        if self.mode == "bypassPermissions":
            return Verdict("allow", "bypassPermissions mode", "mode")
        if read_only:
            return Verdict("allow", "read-only", "mode")
        if self._allowed_by_rules(tool, args):
            return Verdict("allow", "allowed by rule", "rule")
        if bash and self.sandboxed and self.mode in ("default", "acceptEdits"):
            return Verdict("allow", "runs in the sandbox", "sandbox")
        if self.mode == "acceptEdits" and tool in EDIT_TOOLS:
            return Verdict("allow", "acceptEdits mode", "mode")
        return Verdict("ask", f"{tool} needs approval in {self.mode} mode", "mode")

    def _protected(self, tool: str, args: dict[str, Any], read_only: bool) -> Verdict | None:
        """No `.git` folder (at any depth: a nested repository's config can run commands) is
        edited by the editor; Godwit's own settings (which could widen permissions) are always
        asked about. Both checked on the path as typed and as resolved."""
        if tool != EDITOR or read_only:
            return None
        paths = call_paths(tool, args, self.cwd)
        parts = [Path(p).parts for p in paths]
        if any(".git" in ps for ps in parts):
            return Verdict(
                "deny",
                "files inside .git folders are not edited directly; use git commands",
                "protected",
            )
        if any(".godwit" in ps for ps in parts) and self.mode != "bypassPermissions":
            return Verdict(
                "ask",
                "changes to .godwit/ (Godwit's project settings) are always confirmed",
                "protected",
            )
        return None

    @staticmethod
    def _parts(args: dict[str, Any], splitter) -> list[dict[str, Any]]:
        pieces = splitter(args["command"])
        return [{**args, "command": p} for p in pieces] or [args]

    def outside_sandbox(self, args: dict[str, Any]) -> Verdict:
        """May this bash command, which the sandbox stopped, run again outside it? Deny rules
        first; then an allow rule that names the command (a rule for the whole bash tool does
        not count); otherwise the user is asked, every time."""
        for part in self._parts(args, every_command):
            for rule in self.deny:
                if rule.matches("bash", part, self.cwd):
                    return Verdict("deny", f"denied by rule {rule.show()}", "rule")
        # Rules only the project's settings file gave do not count: a sandboxed command can
        # write that file when it does not exist yet.
        untrusted = set(getattr(self, "_project_only", ()))
        named = [
            r
            for r in self.allow
            if r.tool == "bash" and r.pattern not in (None, "", "*") and r.text not in untrusted
        ]
        command = args.get("command")
        if isinstance(command, str) and not NESTED.search(command) and not writes_files(command):
            parts = split_command(command)
            if parts and all(
                any(r.matches("bash", {**args, "command": p}, self.cwd, exact=True) for r in named)
                for p in parts
            ):
                return Verdict("allow", "an allow rule names this command", "rule")
        return Verdict(
            "ask",
            "the sandbox stopped this command; run it again outside the "
            "sandbox (no limits on files or network)?",
            "sandbox",
        )

    def _allowed_by_rules(self, tool: str, args: dict[str, Any]) -> bool:
        rules = [r for r in self.allow if r.covers_tool(tool, args)]
        if tool in BASH_TOOLS:
            command = args.get("command")
            if any(r.pattern in (None, "", "*") for r in rules):
                return True
            if not isinstance(command, str) or NESTED.search(command) or writes_files(command):
                return False
            parts = split_command(command)
            return bool(parts) and all(
                any(r.matches(tool, {**args, "command": p}, self.cwd, exact=True) for r in rules)
                for p in parts
            )
        return any(r.matches(tool, args, self.cwd, exact=True) for r in rules)
