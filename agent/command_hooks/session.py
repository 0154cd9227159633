"""The hooks of one session, by event: what the agent loop calls.

A session has hook sources (the settings' shell hooks, a Claude Agent SDK program's callbacks);
`SessionHooks` runs every source for an event, merges their answers, and speaks in Godwit's
terms: tool calls arrive with Godwit's names and inputs and are shown to the hooks as Claude Code
names them (see names.py); an `updatedInput` comes back in Godwit's keys.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from agent.command_hooks.names import claude_name, from_hook, hook_input
from agent.command_hooks.runner import HookResult, merge


class HookSource(Protocol):
    """Shell hooks or SDK callbacks: both answer `has` and `run`."""

    permission_mode: str

    def has(self, event: str) -> bool: ...

    async def run(
        self, event: str, fields: dict[str, Any], *, match: tuple[str, ...] = ()
    ) -> HookResult: ...


class SessionHooks:
    """Every hook source of a session, event by event."""

    def __init__(self, sources: list[HookSource] | None = None) -> None:
        self.sources: list[HookSource] = list(sources or [])

    def add(self, source: HookSource) -> None:
        self.sources.append(source)

    def set_permission_mode(self, mode: str) -> None:
        for source in self.sources:
            source.permission_mode = mode

    def has(self, event: str) -> bool:
        return any(s.has(event) for s in self.sources)

    async def _run(
        self, event: str, fields: dict[str, Any], match: tuple[str, ...] = ()
    ) -> HookResult:
        active = [s for s in self.sources if s.has(event)]
        if not active:
            return HookResult()
        results = await asyncio.gather(*(s.run(event, fields, match=match) for s in active))
        return merge(list(results))

    async def pre_tool(self, name: str, args: dict[str, Any], tool_use_id: str) -> HookResult:
        """PreToolUse. `updated_input` comes back in Godwit's keys."""
        if not self.has("PreToolUse"):
            return HookResult()
        shown = hook_input(name, args)
        cc_name = claude_name(name, args)
        result = await self._run(
            "PreToolUse",
            {"tool_name": cc_name, "tool_input": shown, "tool_use_id": tool_use_id},
            (name, cc_name),
        )
        if result.updated_input is not None:
            result.updated_input = from_hook(name, shown, result.updated_input)
        return result

    async def post_tool(
        self, name: str, args: dict[str, Any], tool_use_id: str, output: str, is_error: bool
    ) -> HookResult:
        """PostToolUse: a block's reason (and any added context) goes to the model."""
        if not self.has("PostToolUse"):
            return HookResult()
        cc_name = claude_name(name, args)
        response = {"output": output, "is_error": is_error, "success": not is_error}
        if name == "bash":
            response.update(stdout=output, stderr="", interrupted=False)
        return await self._run(
            "PostToolUse",
            {
                "tool_name": cc_name,
                "tool_input": hook_input(name, args),
                "tool_response": response,
                "tool_use_id": tool_use_id,
            },
            (name, cc_name),
        )

    async def prompt(self, text: str) -> HookResult:
        return await self._run("UserPromptSubmit", {"prompt": text})

    async def stop(self, active: bool) -> HookResult:
        return await self._run("Stop", {"stop_hook_active": active})

    async def session_start(self, source: str) -> HookResult:
        return await self._run("SessionStart", {"source": source}, (source,))

    async def session_end(self, reason: str) -> HookResult:
        return await self._run("SessionEnd", {"reason": reason})

    async def pre_compact(self, trigger: str, instructions: str = "") -> HookResult:
        return await self._run(
            "PreCompact", {"trigger": trigger, "custom_instructions": instructions}, (trigger,)
        )

    async def notification(self, message: str, kind: str = "permission_prompt") -> HookResult:
        return await self._run("Notification", {"message": message, "notification_type": kind})


def context_note(context: list[str]) -> str:
    """Hook-supplied context as text appended to what the model reads."""
    if not context:
        return ""
    return "\n\n<hook-context>\n" + "\n\n".join(context) + "\n</hook-context>"
