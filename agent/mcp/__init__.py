"""MCP servers for a session: configuration as Claude Code reads it, the servers' lifecycle, and
their tools as `mcp__<server>__<tool>`. The `mcp` package itself is imported only when a server
is actually started, so a session without servers never loads it."""
