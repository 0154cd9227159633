"""A custom tool from a typed function, a hook that guards bash, and the event stream.

    python examples/tools_and_hooks.py [REPO]

Offline by default (scripted replies); set ANTHROPIC_API_KEY to drive Claude instead.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from agent import Agent, Hooks, PreToolDecision, tool
from agent import events as ev
from agent.providers.scripted import ScriptedProvider


@tool(read_only=True)
def count_lines(path: str) -> int:
    """Count the lines of a text file in the repository."""
    return len(Path(path).read_text().splitlines())


def guard(call):
    """Refuse anything that deletes; let everything else through unchanged."""
    if call.name == "bash" and "rm " in call.input.get("command", ""):
        return PreToolDecision(deny="deleting files is not allowed in this example")
    return None


async def main() -> int:
    repo = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="godwit-example-"))
    )
    (repo / "notes.txt").write_text("one\ntwo\nthree\n")
    os.chdir(repo)
    provider = None
    if not os.environ.get("ANTHROPIC_API_KEY"):
        provider = ScriptedProvider(
            [
                {
                    "tool_calls": [
                        {"name": "count_lines", "input": {"path": "notes.txt"}},
                        {"name": "bash", "input": {"command": "rm notes.txt"}},
                    ]
                },
                {"text": "notes.txt has 3 lines; I was not allowed to delete it."},
            ]
        )
    agent = Agent(
        cwd=repo,
        provider=provider,
        tools=[count_lines],
        hooks=Hooks(before_tool=[guard]),
        permission_mode="bypassPermissions",
    )
    async for event in agent.stream("How many lines does notes.txt have? Then delete it."):
        if isinstance(event, ev.TextDelta):
            print(event.text, end="", flush=True)
        elif isinstance(event, ev.ToolCall):
            print(f"\n-> {event.name} {event.input}")
        elif isinstance(event, ev.ToolResult):
            print(f"<- {'error: ' if event.is_error else ''}{event.content[:80]}")
        elif isinstance(event, ev.TurnEnd):
            print(f"\n[{event.reason}]")
    agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
