"""`/mcp` in the terminal UI: each configured server's state and tools, a failed server's
error, with real MCP servers (the `mcp` package) started by the session."""

from __future__ import annotations

import json

from agent import Agent
from agent.providers.scripted import ScriptedProvider
from tests.agent.mcp import servers

from .helpers import SIZE, make_app, send, transcript_text, wait_for


async def test_mcp_command_lists_servers_tools_and_failures(repo, tmp_path):
    good = servers.script(tmp_path, "good", servers.GOOD)
    crash = servers.script(tmp_path, "crash", servers.CRASH)
    config = json.dumps({"mcpServers": {"good": good, "broken": crash}})
    with Agent(
        cwd=repo, provider=ScriptedProvider([]), mcp_config=[config], strict_mcp_config=True
    ) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "/mcp")
            await wait_for(
                pilot, lambda: "mcp__good__echo" in transcript_text(app), what="the /mcp listing"
            )
            shown = transcript_text(app)
    assert "good" in shown and "mcp__good__picture" in shown
    assert "broken" in shown and "GITHUB_TOKEN is not set" in shown
    assert "mcp__broken__" not in shown
