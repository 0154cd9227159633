"""Slash commands typed in the input box: /help, /compact, /context, /cost, /model, /mcp, /rewind,
/undo, /clear, /resume, /quit. Each is a small function of the app and the text after the
command's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.text import Text

from agent.ui import session_ops
from agent.ui.format import compact_number
from agent.ui.surface import SessionApp

KEYS = (
    "enter send · shift+enter or ctrl+j new line · esc or ctrl+c interrupt · esc esc rewind · "
    "↑↓ prompt history · shift+tab permission mode · ctrl+c twice or ctrl+d quit"
)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[SessionApp, str], Awaitable[None] | None]
    # Commands that call the agent wait while a prompt is running.
    needs_idle: bool = False


def _help(app: SessionApp, arg: str) -> None:
    text = Text()
    for command in COMMANDS.values():
        text.append(f"/{command.name:<9}", style="bold")
        text.append(f" {command.help}\n")
    text.append(KEYS, style="dim")
    app.transcript.notice(text)


async def _compact(app: SessionApp, arg: str) -> None:
    await session_ops.compact(app, arg.strip() or None)


def _context(app: SessionApp, arg: str) -> None:
    usage = app.agent.context_usage()
    text = Text(
        f"Context: {compact_number(usage['total'])} of "
        f"{compact_number(usage['window'])} tokens ({100 * usage['fraction']:.1f}%)\n",
        style="bold",
    )
    for part in ("system_prompt", "tools", "memory", "conversation", "tool_results", "free"):
        text.append(f"  {part.replace('_', ' '):<14} {usage[part]:>9,}\n")
        if part == "system_prompt":
            # Each instruction file's share (AGENTS.md / CLAUDE.md, root down to here).
            for f in usage.get("instruction_files", []):
                share = 100 * f["tokens"] / max(usage["window"], 1)
                text.append(f"    {f['label']:<30} {f['tokens']:>7,}  ({share:.1f}%)\n", "dim")
    text.rstrip()
    app.transcript.notice(text)
    app.refresh_context(usage)


async def _model(app: SessionApp, arg: str) -> None:
    """`/model` shows the model; `/model SPEC` switches to it for the next request."""
    spec = arg.strip()
    if not spec:
        app.transcript.notice(f"model: {app.agent.model} (switch with /model sonnet|opus|haiku|ID)")
        return
    from agent.errors import GodwitError

    try:
        resolved = await app.agent.aset_model(spec)
    except GodwitError as exc:
        app.transcript.notice(f"error: {exc}", "error")
        return
    app.status.model = resolved.split(":", 1)[-1]
    app.transcript.notice(f"model: {resolved} from the next request on")


def _mcp(app: SessionApp, arg: str) -> None:
    from agent.mcp.commands import format_rows

    app.transcript.notice(Text(format_rows(app.agent.mcp_status())))


def _cost(app: SessionApp, arg: str) -> None:
    """What this conversation has used: tokens by kind, the cost, how many model calls."""
    from agent import events as ev

    events = app.agent.events
    totals = app.agent.runtime().totals
    calls = sum(1 for e in events if isinstance(e, ev.Usage))
    text = Text(
        f"Cost of this session: ${totals.cost_usd:.4f} over "
        f"{calls} model call{'' if calls == 1 else 's'}\n",
        style="bold",
    )
    for label, value in (
        ("input", totals.input_tokens),
        ("output", totals.output_tokens),
        ("cache read", totals.cache_read_input_tokens),
        ("cache write", totals.cache_creation_input_tokens),
    ):
        text.append(f"  {label + ' tokens':<19} {value:>11,}\n")
    text.rstrip()
    app.transcript.notice(text)


def _resume(app: SessionApp, arg: str) -> None:
    app.open_resume_picker()


def _rewind(app: SessionApp, arg: str) -> None:
    session_ops.open_rewind(app)


async def _undo(app: SessionApp, arg: str) -> None:
    await session_ops.undo_rewind(app)


async def _clear(app: SessionApp, arg: str) -> None:
    await app.new_conversation()


def _quit(app: SessionApp, arg: str) -> None:
    app.exit(0)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "this list", _help),
        Command("compact", "[instructions] summarise the older conversation now", _compact, True),
        Command("context", "where the context window goes", _context),
        Command("cost", "tokens and cost of this session", _cost),
        Command("model", "[sonnet|opus|haiku|ID] show or switch the model", _model, True),
        Command("mcp", "MCP servers: state and tools", _mcp),
        Command("rewind", "pick a checkpoint to restore (also esc esc)", _rewind, True),
        Command("undo", "undo the last rewind", _undo, True),
        Command("clear", "start a new conversation (this one stays resumable)", _clear, True),
        Command("resume", "pick an earlier session to continue", _resume, True),
        Command("quit", "leave (the session can be resumed with godwit --continue)", _quit),
    )
}


def parse(line: str) -> tuple[Command | None, str, str]:
    """`/name args` -> (the command or None, its name as typed, the rest of the line)."""
    head, _, rest = line.strip()[1:].partition(" ")
    return COMMANDS.get(head.lower()), head, rest
