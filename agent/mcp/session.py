"""The MCP servers of a live session, as the runtime sees them.

Built by agent.build (servers started before the first prompt), asked by the loop before each
model call for failures to report (each once) and for the tools that are still there, closed with
the session.
"""

from __future__ import annotations

from typing import Any

from agent.mcp.manager import McpManager
from agent.mcp.tools import McpTool, mcp_tools


class McpSession:
    """A started McpManager and the tools it offers."""

    def __init__(self, manager: McpManager) -> None:
        self.manager = manager

    def start(self) -> list[McpTool]:
        """Start the servers; the tools of those that connected."""
        self.manager.start()
        return mcp_tools(self.manager)

    def reports(self) -> list[str]:
        """Failures (and servers left off) not reported yet, as lines for the user."""
        out = []
        for name, message in self.manager.take_reports():
            if self.manager.servers[name].state == "not approved":
                out.append(message)
            else:
                out.append(f"MCP server {name!r} failed: {message}. Its tools are not available.")
        return out

    def prune(self, tools: list[Any]) -> list[Any]:
        """`tools` without those of servers that are no longer connected."""
        alive = {s.name for s in self.manager.connected()}
        return [t for t in tools if not isinstance(t, McpTool) or t.server in alive]

    def status(self) -> list[dict[str, Any]]:
        return self.manager.status()

    def close(self) -> None:
        self.manager.close()
