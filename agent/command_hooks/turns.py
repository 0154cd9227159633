"""The hooks at the agent loop's turning points, as small steps the loop calls.

Each takes the runtime (anything with `hooks_of_session`, `record` and `id`) and returns what the
loop needs to know; hook failures and `systemMessage`s are recorded as `Error` events of kind
"hook" (shown as a line in the UI, an `error` in the event stream, a `hook_error` notice in
stream-json) and never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent import events as ev
from agent.command_hooks.runner import HookResult
from agent.command_hooks.session import context_note

# A Stop hook can send the model back to work; this many times per prompt at most, so a hook
# that always blocks cannot keep a session busy for ever.
MAX_STOP_CONTINUATIONS = 8


@dataclass
class PromptOutcome:
    """What UserPromptSubmit (and, first time, SessionStart) made of a prompt."""

    text: str  # the prompt, with any context the hooks added
    blocked: str | None = None  # why the prompt was refused (shown to the user)
    stop: str | None = None  # a hook said continue: false


async def report(rt: Any, result: HookResult) -> None:
    """Record a hook run's errors and messages for the user."""
    for message in result.errors:
        await rt.record(ev.Error(message=message, kind="hook"))
    for message in result.messages:
        await rt.record(ev.Error(message=f"hook: {message}", kind="hook"))


async def before_prompt(rt: Any, prompt: str, *, first: bool, resumed: bool) -> PromptOutcome:
    """SessionStart on the session's first prompt here, then UserPromptSubmit."""
    hooks = rt.hooks_of_session
    context: list[str] = []
    if first and hooks.has("SessionStart"):
        start = await hooks.session_start("resume" if resumed else "startup")
        await report(rt, start)
        context += start.context
    result = await hooks.prompt(prompt)
    await report(rt, result)
    if result.stop:
        return PromptOutcome(prompt, stop=result.stop_reason or "stopped by a hook")
    if result.blocked:
        return PromptOutcome(prompt, blocked=result.reason or "refused by a hook")
    return PromptOutcome(prompt + context_note(context + result.context))


async def after_stop(rt: Any, continuations: int) -> str | None:
    """Stop: the text to send the model when a hook asks it to go on, else None."""
    hooks = rt.hooks_of_session
    if not hooks.has("Stop") or continuations >= MAX_STOP_CONTINUATIONS:
        return None
    result = await hooks.stop(active=continuations > 0)
    await report(rt, result)
    if result.stop or not result.blocked:
        return None
    return f"[Stop hook] {result.reason or 'Keep going: the task is not done.'}"


async def before_tool(rt: Any, name: str, args: dict[str, Any], tool_use_id: str) -> HookResult:
    """PreToolUse (reported)."""
    result = await rt.hooks_of_session.pre_tool(name, args, tool_use_id)
    await report(rt, result)
    return result


async def after_tool(
    rt: Any, name: str, args: dict[str, Any], tool_use_id: str, content: str, is_error: bool
) -> str:
    """PostToolUse: the tool's content with what the hooks tell the model appended."""
    result = await rt.hooks_of_session.post_tool(name, args, tool_use_id, content, is_error)
    await report(rt, result)
    extra = []
    if result.blocked and result.reason:
        extra.append(f"[PostToolUse hook] {result.reason}")
    extra += result.context
    return content + ("\n\n" + "\n\n".join(extra) if extra else "")
