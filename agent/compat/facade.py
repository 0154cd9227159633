"""What a stream-json session needs of a Godwit `Agent`, in one place (serve.py uses it).

Kept apart from serve.py so that the protocol handling does not reach into the runtime: every
change to the session goes through the Agent's own methods (and so is recorded as an event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent import events as ev


class AgentFacade:
    """An `agent.sdk.Agent` as the stream-json session drives it."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self._notice: Callable[[str, dict[str, Any]], None] | None = None

    # -- session -----------------------------------------------------------------------

    def runtime(self):
        return self.agent.runtime()

    def init_info(self) -> dict[str, Any]:
        """The fields of `system/init`."""
        rt = self.agent.runtime()
        servers = [
            {"name": row["name"], "status": _status(row["state"])} for row in self.mcp_status()
        ]
        return {
            "cwd": str(rt.cwd),
            "model": rt.provider.model,
            "tools": [t.name for t in rt.tools],
            "permission_mode": rt.policy.mode,
            "mcp_servers": servers,
        }

    def next_turn(self) -> int:
        return self.agent.runtime().session.conversation.turns + 1

    def stream(self, text: str):
        return self.agent.stream(text)

    def cancel(self) -> None:
        self.agent.cancel()

    # -- what the SDK may change -------------------------------------------------------

    def serve_sdk_servers(self, channel) -> None:
        """Let MCP servers of `type: "sdk"` (inside the SDK program) be reached through the
        control channel; call before the session opens."""
        import asyncio

        from agent.mcp.bridge import cross_loop

        async def send(name: str, message: dict[str, Any]) -> dict[str, Any] | None:
            answer = await channel.request(
                "mcp_message", {"server_name": name, "message": message}, timeout=60
            )
            return answer.get("mcp_response")

        self.agent.options.mcp_sdk_send = cross_loop(send, asyncio.get_running_loop())

    def set_approver(self, approver) -> None:
        self.agent.set_approver(approver)

    def set_sdk_hooks(self, channel, config: dict[str, Any]) -> None:
        from agent.compat.sdk_hooks import SdkHooks

        self.agent.add_hook_source(
            lambda rt: SdkHooks(
                channel,
                config,
                session_id=rt.id,
                cwd=str(rt.cwd),
                transcript_path=str(getattr(rt.session.log, "path", "")),
            )
        )

    async def set_permission_mode(self, mode: str) -> None:
        await self.agent.aset_permission_mode(mode)

    async def set_model(self, model: str | None) -> None:
        """The SDK's set_model: None is the default model; a bare name is the current
        provider's (the SDK names Claude models by id or alias alone)."""
        from agent.settings import DEFAULT_MODEL

        rt = self.agent.runtime()
        spec = model or DEFAULT_MODEL
        if ":" not in spec and rt.provider.name not in ("anthropic", "scripted"):
            spec = f"{rt.provider.name}:{spec}"
        await self.agent.aset_model(spec)

    async def rewind_turn(self, turn: int) -> None:
        """Restore the files to the checkpoint taken when prompt `turn` started."""
        rt = self.agent.runtime()
        found = [
            e
            for e in rt.session.events
            if isinstance(e, ev.Checkpoint) and e.reason == "turn_start" and e.turn == turn
        ]
        if not found:
            raise ValueError(f"no checkpoint for turn {turn}")
        await self.agent.arewind(found[-1].id, "code")

    # -- what the SDK may ask ----------------------------------------------------------

    def context_usage(self) -> dict[str, Any]:
        """Godwit's context breakdown in the shape of Claude Code's get_context_usage."""
        usage = self.agent.context_usage()
        names = {
            "system_prompt": "System prompt",
            "tools": "System tools",
            "memory": "Memory files",
            "conversation": "Messages",
            "tool_results": "Tool results",
            "free": "Free space",
        }
        categories = [
            {"name": label, "tokens": int(usage.get(key, 0)), "color": "default"}
            for key, label in names.items()
            if key in usage
        ]
        total, window = int(usage.get("total", 0)), int(usage.get("window", 0))
        return {
            "categories": categories,
            "totalTokens": total,
            "maxTokens": window,
            "rawMaxTokens": window,
            "percentage": round(100 * total / window, 2) if window else 0.0,
            "model": self.agent.runtime().provider.model,
            "godwit": usage,
        }

    def mcp_status(self) -> list[dict[str, Any]]:
        return self.agent.mcp_status()

    def on_notice(self, callback: Callable[[str, dict[str, Any]], None]) -> None:
        """Call `callback(subtype, fields)` for each MCP failure and hook error reported."""

        def see(event: Any) -> None:
            if isinstance(event, ev.Error) and event.kind in ("mcp", "hook"):
                callback(
                    "mcp_server_failed" if event.kind == "mcp" else "hook_error",
                    {"message": event.message},
                )

        self.agent.subscribe(see)


def _status(state: str) -> str:
    """Godwit's server states in Claude Code's words."""
    return {
        "connected": "connected",
        "failed": "failed",
        "pending": "pending",
        "not approved": "needs-approval",
        "stopped": "disconnected",
    }.get(state, state)
