"""One live session: its log, conversation, provider, tools and policies, and `emit`.

The loop (agent/loop.py) drives a `Runtime`; the SDK, the CLI and the UI build one. Everything
that happens goes through `emit`, which logs it, tells the hooks, and hands it to the consumer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agent import events as ev
from agent.hooks import Hooks, call
from agent.permissions import Approver, PermissionPolicy
from agent.providers.base import ModelRequest, Provider, TokenUsage
from agent.session.open import OpenedSession
from agent.settings import Settings
from tools.base import Tool, ToolContext

log = logging.getLogger("godwit")


@dataclass
class Totals:
    """Token usage and cost of the whole session (rebuilt from Usage events on resume)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, usage: TokenUsage, cost: float) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_input_tokens += usage.cache_read_input_tokens
        self.cache_creation_input_tokens += usage.cache_creation_input_tokens
        self.cost_usd += cost

    @classmethod
    def of(cls, events: list[ev._Event]) -> "Totals":
        """The sum of the Usage events among `events`."""
        totals = cls()
        for event in events:
            if isinstance(event, ev.Usage):
                totals.add(TokenUsage(
                    input_tokens=event.input_tokens, output_tokens=event.output_tokens,
                    cache_read_input_tokens=event.cache_read_input_tokens,
                    cache_creation_input_tokens=event.cache_creation_input_tokens,
                ), event.cost_usd)
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


@dataclass
class Runtime:
    settings: Settings
    cwd: Path
    home: Path
    session: OpenedSession
    provider: Provider
    tools: list[Tool]
    system: str
    policy: PermissionPolicy
    hooks: Hooks = field(default_factory=Hooks)
    approver: Approver | None = None
    # Optional collaborators wired by agent.build: checkpoints and context management.
    checkpointer: Any = None
    context: Any = None
    tool_ctx: ToolContext = None  # type: ignore[assignment]
    totals: Totals = field(default_factory=Totals)
    # Set by the consumer to receive events as they happen (the SDK's queue).
    sink: Callable[[ev._Event], None] | None = None

    def __post_init__(self) -> None:
        if self.tool_ctx is None:
            self.tool_ctx = ToolContext(cwd=self.cwd)
        self.totals = Totals.of(self.session.events)

    @property
    def id(self) -> str:
        return self.session.id

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    async def emit(self, event: ev._Event, *, sync: bool = False) -> ev._Event:
        """Record `event` (log, conversation), run on_event hooks, pass it to the sink."""
        if not event.ephemeral:
            self.session.log.append(event, sync=sync)
            self.session.events.append(event)
            self.session.conversation.apply(event)
        for hook in self.hooks.on_event:
            try:
                await call(hook, event)
            except Exception:  # noqa: BLE001 - a user's hook must not kill the session
                log.exception("on_event hook failed")
        if self.sink is not None:
            self.sink(event)
        return event

    def durable(self) -> None:
        """Block until the log is on disk (end of a turn)."""
        self.session.log.wait_durable()

    def full_request(self) -> ModelRequest:
        """The next model call with the whole conversation (before any context editing)."""
        return ModelRequest(
            system=self.system,
            messages=self.session.conversation.messages(),
            tools=self.tools,
            max_tokens=self.settings.max_tokens,
            thinking_budget=self.settings.thinking_budget,
        )

    async def request(self) -> ModelRequest:
        """The next model call as it will be sent: through the context manager's view."""
        request = self.full_request()
        if self.context is not None:
            request = await self.context.prepare(self, request)
        return request

    async def usage(self, usage: TokenUsage, model: str, *, estimated: bool = False) -> None:
        cost = self.provider.cost(usage)
        self.totals.add(usage, cost)
        t = self.totals
        await self.emit(ev.Usage(
            model=model, cost_usd=cost, estimated=estimated, **usage.model_dump(),
            session_input_tokens=t.input_tokens, session_output_tokens=t.output_tokens,
            session_cache_read_input_tokens=t.cache_read_input_tokens,
            session_cache_creation_input_tokens=t.cache_creation_input_tokens,
            session_cost_usd=t.cost_usd,
        ))

    async def checkpoint(self, turn: int, label: str, reason: str) -> None:
        """Snapshot the work tree (when checkpoints are on) and log the checkpoint event."""
        if self.checkpointer is None:
            if reason == "turn_start":
                # No code snapshot, but the conversation can still be rewound to this turn.
                import secrets

                await self.emit(ev.Checkpoint(id=secrets.token_hex(4), turn=turn, label=label,
                                              reason=reason, created_commit=False), sync=True)
            return
        from agent.session.checkpointer import CheckpointFailed

        try:
            event = await asyncio.to_thread(self.checkpointer.snapshot, self.id, turn, label, reason)
        except CheckpointFailed as exc:
            if exc.fatal:
                self.checkpointer = None
            await self.emit(ev.Error(message=str(exc), kind="checkpoint"))
            return
        await self.emit(event, sync=True)

    def close(self) -> None:
        from tools import close_all

        close_all(self.tool_ctx)
        self.session.log.close()
