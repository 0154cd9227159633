"""`godwit` with no -p: the Textual UI when it is available, else a plain line-mode session."""

from __future__ import annotations

import asyncio
import signal
import sys

from agent import events as ev
from agent.cli.headless import tool_line


def run_interactive(agent, first_prompt: str | None = None) -> int:
    try:
        from agent.ui import run_app  # the Textual UI (agent/ui/)
    except ImportError:
        run_app = None
    if run_app is not None and sys.stdin.isatty() and sys.stdout.isatty():
        return run_app(agent, first_prompt)
    return asyncio.run(_line_mode(agent, first_prompt))


async def _ask(name: str, args: dict, reason: str) -> bool:
    shown = args.get("command") or args.get("path") or args
    try:
        answer = await asyncio.to_thread(input, f"\nAllow {name}: {shown}? ({reason}) [y/N] ")
    except EOFError:  # no one left to answer (stdin closed): refuse
        return False
    return answer.strip().lower() in ("y", "yes")


async def _line_mode(agent, first_prompt: str | None) -> int:
    """Read prompts line by line; stream replies; ask before edits and commands."""
    agent.set_approver(_ask)
    rt = agent.runtime()
    out = sys.stdout
    out.write(
        f"godwit — session {rt.id} in {rt.cwd} ({rt.model_spec or rt.settings.model}). "
        "Ctrl-D to quit, Ctrl-C to interrupt.\n"
    )
    for warning in rt.session.warnings:
        out.write(f"warning: {warning}\n")
    prompt = first_prompt
    while True:
        if prompt is None:
            try:
                prompt = await asyncio.to_thread(input, "\n> ")
            except EOFError:
                out.write("\n")
                return 0
        if not prompt.strip():
            prompt = None
            continue
        loop = asyncio.get_running_loop()
        # Ctrl-C interrupts the running prompt (the partial reply is kept), not the program.
        loop.add_signal_handler(signal.SIGINT, agent.cancel)
        try:
            async for event in agent.stream(prompt):
                _show(event, out)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        prompt = None


def _show(event: ev.Event, out) -> None:
    if isinstance(event, ev.TextDelta):
        out.write(event.text)
    elif isinstance(event, ev.ToolCall):
        out.write("\n" + tool_line(event))
    elif isinstance(event, ev.ToolResult):
        out.write(tool_line(event))
    elif isinstance(event, ev.Error):
        out.write(f"\n[error] {event.message}\n")
    elif isinstance(event, ev.TurnEnd):
        out.write(f"\n[{event.reason}]\n")
    out.flush()
