"""`godwit` with no -p: the Textual UI when it is available, else a plain line-mode session;
and `godwit --resume` without an id, which lets the user choose the session."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from agent import events as ev
from agent.cli.headless import tool_line
from agent.describe import approval_reason, count, resume_hint, tool_question, tool_title


def run_interactive(agent, first_prompt: str | None = None) -> int:
    if sys.stdin.isatty():
        # A project's MCP servers are approved once, on the terminal, before the session starts
        # them (headless runs never ask; `godwit mcp approve` does it ahead of time).
        agent.options.mcp_ask = _approve_server
        agent.options.trust_ask = _approve_project_code
    try:
        from agent.ui import run_app  # the Textual UI (agent/ui/)
    except ImportError:
        run_app = None
    if run_app is not None and sys.stdin.isatty() and sys.stdout.isatty():
        return run_app(agent, first_prompt)
    return asyncio.run(_line_mode(agent, first_prompt))


def _approve_server(spec) -> bool:
    from agent.mcp.setup import describe

    print(f"This project's .mcp.json configures an MCP server:\n  {describe(spec)}")
    try:
        answer = input("Use it in this project? (remembered) [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _approve_project_code(description: str) -> bool:
    print(f"This project's settings (.godwit/) run commands of their own:\n{description}")
    try:
        answer = input("Allow them in this project? (remembered) [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _asker(cwd):
    """The line-mode approval: what the call does, the edit's diff (as the UI shows it), and a
    y/N question."""

    async def ask(name: str, args: dict, reason: str) -> bool:
        print("\n" + "\n".join(_call_preview(name, args, cwd)), flush=True)
        try:
            answer = await asyncio.to_thread(
                input, f"{tool_question(name, args)} ({approval_reason(name, reason)}) [y/N] "
            )
        except EOFError:  # no one left to answer (stdin closed): refuse
            return False
        return answer.strip().lower() in ("y", "yes")

    return ask


def _call_preview(name: str, args: dict, cwd) -> list[str]:
    if name == "str_replace_based_edit_tool" and args.get("command") != "view":
        from tools.base import ToolContext
        from tools.edit_preview import preview_edit

        preview = preview_edit(args, ToolContext(cwd=cwd))
        if preview.error:
            return [f"  (this edit will fail: {preview.error})"]
        return [f"  {line}" for line in preview.lines]
    if name == "bash":
        return [f"  $ {args.get('command', '')}"]
    return [f"  {tool_title(name, args)}"]


async def _line_mode(agent, first_prompt: str | None) -> int:
    """Read prompts line by line; stream replies; ask before edits and commands."""
    rt = agent.runtime()
    agent.set_approver(_asker(rt.cwd))
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
                if agent.saved:
                    out.write(resume_hint(rt.id) + "\n")
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


def pick_session(cwd: Path) -> str | None:
    """The chosen session id, or None when there is none or the user chose none."""
    from agent.project import project_root
    from agent.session.index import godwit_home, list_sessions

    rows = list_sessions(godwit_home(), project_root(cwd.resolve()))
    if not rows:
        print("No sessions to resume in this directory; `godwit` starts one.")
        return None
    if sys.stdin.isatty() and sys.stdout.isatty():
        try:
            from agent.ui.resume_screen import run_picker  # the Textual UI (agent/ui/)
        except ImportError:
            pass
        else:
            return run_picker(rows)
    for number, row in enumerate(rows, start=1):
        when = (row.get("last_activity") or "")[:16].replace("T", " ")
        print(
            f"{number:>3}. {when}  {count(row['turns'], 'turn'):>9}  "
            f"{(row['first_prompt'] or '(no prompt)')[:50]}  {row['id']}"
        )
    try:
        answer = input("Resume which session? (number, empty to cancel) ").strip()
    except EOFError:
        return None
    if answer.isdigit() and 1 <= int(answer) <= len(rows):
        return rows[int(answer) - 1]["id"]
    return None
