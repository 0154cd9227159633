"""How MCP tools are named: `mcp__<server>__<tool>`, as Claude Code names them."""

from __future__ import annotations

import re

PREFIX = "mcp__"
MAX_NAME = 64
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """The name the model sees for `tool` of `server` (characters the model APIs refuse in a
    tool name become `_`; at most 64 characters)."""
    return (PREFIX + _BAD.sub("_", server) + "__" + _BAD.sub("_", tool))[:MAX_NAME]


def split_name(name: str) -> tuple[str, str] | None:
    """(server, tool) of an `mcp__server__tool` name, else None."""
    if not name.startswith(PREFIX):
        return None
    server, sep, tool = name[len(PREFIX) :].partition("__")
    return (server, tool) if sep and server else None
