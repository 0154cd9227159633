"""Permission rules for MCP tools, as Claude Code writes them.

    mcp__git                   every tool of the server `git`
    mcp__git__*                the same, as a wildcard
    mcp__git__git_status       that one tool
    mcp__git__git_diff*        tools of `git` whose name starts with git_diff

An allow rule must name its server literally: `mcp__*` or `mcp__g*__x` in an allow list would let
any server (including one a repository adds later) run unasked, so such a rule is refused there,
as Claude Code skips it. Deny and ask rules may use wildcards anywhere (`mcp__*` asks about every
MCP tool). Rules take no `(pattern)`: an MCP tool's arguments are its server's business.
"""

from __future__ import annotations

import fnmatch
import re

from agent.errors import ConfigError
from agent.mcp.names import PREFIX, split_name

_RULE = re.compile(r"mcp__[A-Za-z0-9_*?-]+")


def is_mcp_rule(text: str) -> bool:
    """Whether a permission rule is about MCP tools."""
    return text.strip().startswith(PREFIX)


def check_rule(text: str, kind: str) -> str:
    """The rule, validated for a list of `kind` (allow / deny / ask); raises ConfigError."""
    rule = text.strip()
    if not _RULE.fullmatch(rule):
        raise ConfigError(
            f"Bad MCP permission rule {text!r}: write mcp__SERVER, mcp__SERVER__* "
            "or mcp__SERVER__TOOL (no parentheses)"
        )
    if kind == "allow":
        server = rule[len(PREFIX) :].split("__", 1)[0]
        if not server or any(c in server for c in "*?"):
            raise ConfigError(
                f"Allow rule {text!r} must name its MCP server (mcp__SERVER or "
                "mcp__SERVER__TOOL); a wildcard server would allow servers you "
                "have not seen"
            )
    return rule


def rule_matches(rule: str, tool: str) -> bool:
    """Whether `rule` covers the tool named `tool` (`mcp__server__name`)."""
    parts = split_name(tool)
    if parts is None:
        return False
    server, name = parts
    body = rule[len(PREFIX) :]
    rule_server, sep, rule_tool = body.partition("__")
    if not fnmatch.fnmatchcase(server, rule_server):
        return False
    if not sep or rule_tool in ("", "*"):
        return True
    return fnmatch.fnmatchcase(name, rule_tool)
