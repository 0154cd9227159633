"""`godwit --input-format stream-json --output-format stream-json`: a session driven over
stdin/stdout the way the Claude Agent SDK drives Claude Code.

Prompts (user lines) run one after another in one session; control requests are answered as
they arrive, also while a prompt runs (interrupt, set_permission_mode, get_context_usage...).
When stdin closes, the prompts already read are finished, then the process exits: 0, or 1 when
the last prompt ended in an error (the SDK expects that after an `is_error` result).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from agent.command_hooks.names import claude_name, from_hook, hook_input
from agent.compat.control import ControlChannel, ControlError, prompt_text
from agent.compat.stream_json import ClaudeCodeStream

SESSION_STATE_ENV = "CLAUDE_CODE_SDK_READS_SESSION_STATE"


@dataclass
class ServeOptions:
    """What the command line asked of the stream."""

    partial: bool = False  # --include-partial-messages
    replay_user: bool = False  # --replay-user-messages
    ask_over_stdio: bool = False  # --permission-prompt-tool stdio
    permission_timeout_s: float | None = None


class Approval:
    """An SDK `can_use_tool` answer: allowed or not, maybe with a changed input or a message."""

    def __init__(
        self,
        allow: bool,
        *,
        input: dict[str, Any] | None = None,
        message: str = "",
        interrupt: bool = False,
    ) -> None:
        self.allow, self.input, self.message, self.interrupt = allow, input, message, interrupt

    def __bool__(self) -> bool:
        return self.allow


class StreamSession:
    """One SDK-driven session: the agent, the channel and the stream translator."""

    def __init__(self, agent: Any, channel: ControlChannel, opts: ServeOptions) -> None:
        self.agent = agent
        self.channel = channel
        self.opts = opts
        self.stream: ClaudeCodeStream | None = None
        self.prompts: asyncio.Queue = asyncio.Queue()
        self.initialized = False
        self.sdk_hooks_config: dict[str, Any] | None = None
        self.last_error = False
        self._handlers = {
            "initialize": self._initialize,
            "interrupt": self._interrupt,
            "set_permission_mode": self._set_permission_mode,
            "set_model": self._set_model,
            "rewind_files": self._rewind_files,
            "get_context_usage": self._context_usage,
            "mcp_status": self._mcp_status,
        }

    # -- the main loop ---------------------------------------------------------------------

    async def run(self) -> int:
        self.channel.start()
        self.agent.serve_sdk_servers(self.channel)
        if self.opts.ask_over_stdio:
            self.agent.set_approver(self._can_use_tool)
        worker = asyncio.create_task(self._work())
        async for line in self.channel.lines():
            kind = line.get("type")
            if kind == "user":
                self.prompts.put_nowait(prompt_text(line))
            elif kind == "control_request":
                asyncio.create_task(self._control(line))
            # control_cancel_request and unknown types: nothing to do
        self.prompts.put_nowait(None)
        await worker
        return 1 if self.last_error else 0

    def _ensure_stream(self) -> ClaudeCodeStream:
        if self.stream is None:
            rt = self.agent.runtime()
            self.stream = ClaudeCodeStream(
                rt.id,
                partial=self.opts.partial,
                replay_user=self.opts.replay_user,
                session_state=os.environ.get(SESSION_STATE_ENV) == "1",
            )
            self.agent.on_notice(self._notice)
            self._write_all([self.stream.init(**self.agent.init_info())])
        return self.stream

    async def _work(self) -> None:
        while (text := await self.prompts.get()) is not None:
            if not text.strip():
                continue
            # Opening the session starts the MCP servers, and servers inside the SDK program
            # answer through this event loop: open it in a worker thread, not on the loop.
            await asyncio.to_thread(self.agent.runtime)
            stream = self._ensure_stream()
            turn = self.agent.next_turn()
            self._write_all(stream.user_prompt(text, turn) + stream.state("running"))
            errors = False
            async for event in self.agent.stream(text):
                self._write_all(stream.feed(event))
                if getattr(event, "type", None) == "turn_end":
                    errors = event.reason not in ("end_turn", "stop_sequence", "tool_use")
            self.last_error = errors
            self._write_all(stream.state("idle"))

    def _write_all(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            self.channel.write(line)

    def _notice(self, subtype: str, fields: dict[str, Any]) -> None:
        if self.stream is not None:
            self.channel.write(self.stream.notice(subtype, **fields))

    # -- control requests from the SDK -----------------------------------------------------

    async def _control(self, line: dict[str, Any]) -> None:
        request_id = str(line.get("request_id"))
        body = line.get("request") or {}
        handler = self._handlers.get(str(body.get("subtype")))
        if handler is None:
            self.channel.respond(
                request_id,
                error=f"godwit does not support the control request {body.get('subtype')!r}",
            )
            return
        try:
            response = await handler(body)
        except Exception as exc:  # noqa: BLE001 - any failure is this request's error answer
            self.channel.respond(request_id, error=str(exc) or type(exc).__name__)
            return
        self.channel.respond(request_id, response or {})

    async def _initialize(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("hooks"):
            self.agent.set_sdk_hooks(self.channel, body["hooks"])
        self.initialized = True
        return {
            "commands": [],
            "output_style": "default",
            "available_output_styles": ["default"],
            "models": [],
            "account": {},
            "pid": os.getpid(),
        }

    async def _interrupt(self, body: dict[str, Any]) -> dict[str, Any]:
        self.agent.cancel()
        return {}

    async def _set_permission_mode(self, body: dict[str, Any]) -> dict[str, Any]:
        await self.agent.set_permission_mode(str(body.get("mode")))
        return {}

    async def _set_model(self, body: dict[str, Any]) -> dict[str, Any]:
        await self.agent.set_model(body.get("model"))
        return {}

    async def _rewind_files(self, body: dict[str, Any]) -> dict[str, Any]:
        uuid = str(body.get("user_message_id"))
        turn = self.stream.prompt_uuids.get(uuid) if self.stream else None
        if turn is None:
            raise ValueError(
                f"no checkpoint for user message {uuid} (rewind_files names a "
                "prompt by the uuid of its replayed user line: pass "
                "extra_args={'replay-user-messages': None})"
            )
        await self.agent.rewind_turn(turn)
        return {}

    async def _context_usage(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.agent.context_usage()

    async def _mcp_status(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"mcpServers": self.agent.mcp_status()}

    # -- control requests to the SDK -------------------------------------------------------

    async def _can_use_tool(
        self, name: str, args: dict[str, Any], reason: str, tool_use_id: str | None = None
    ) -> Approval:
        shown = hook_input(name, args)
        try:
            answer = await self.channel.request(
                "can_use_tool",
                {
                    "tool_name": claude_name(name, args),
                    "input": shown,
                    "permission_suggestions": [],
                    "decision_reason": reason,
                    "tool_use_id": tool_use_id,
                },
                timeout=self.opts.permission_timeout_s,
            )
        except ControlError as exc:
            return Approval(False, message=f"the SDK's can_use_tool failed: {exc}")
        if answer.get("behavior") == "allow":
            updated = answer.get("updatedInput")
            new = from_hook(name, shown, updated) if isinstance(updated, dict) else None
            return Approval(True, input=new if new != args else None)
        if answer.get("interrupt"):
            self.agent.cancel()
        return Approval(
            False,
            message=str(answer.get("message") or "denied by can_use_tool"),
            interrupt=bool(answer.get("interrupt")),
        )


async def serve(agent: Any, args: Any) -> int:
    """The `godwit --input-format stream-json` entry point (args: the parsed command line)."""
    from agent.compat.facade import AgentFacade

    opts = ServeOptions(
        partial=bool(args.include_partial_messages),
        replay_user=bool(args.replay_user_messages),
        ask_over_stdio=args.permission_prompt_tool == "stdio",
    )
    session = StreamSession(AgentFacade(agent), ControlChannel(), opts)
    if args.prompt:
        session.prompts.put_nowait(args.prompt)
    return await session.run()
