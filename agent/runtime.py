"""One live session: its log, conversation, provider, tools and policies, and `record`.

The loop (agent/loop.py) drives a `Runtime`; the SDK, the CLI and the UI build one. Everything
that happens goes through `record` (agent/session/recorder.py), which logs it, applies it to the
state derived from the log (the conversation, the permission policy), and tells the
subscribers and the hooks. What the model is told (the system prompt in plan mode) is derived
from that state when each request is made.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent import events as ev
from agent.command_hooks.session import SessionHooks
from agent.errors import ConfigError
from agent.hooks import Hooks
from agent.permissions import Approver, PermissionPolicy, Rule
from agent.prompt import for_mode
from agent.providers.base import (
    ModelRequest,
    ModelResponse,
    Provider,
    TokenUsage,
    close_provider,
)
from agent.session.open import OpenedSession
from agent.session.recorder import Recorder
from agent.settings import Settings
from tools.base import Tool, ToolContext


class Checkpointer(Protocol):
    """What the session needs of checkpoints (agent/session/checkpointer.py implements it)."""

    @property
    def store(self) -> Any:
        """The project's checkpoint store (for rewind, diff and listings)."""

    def snapshot(
        self, session_id: str, turn: int, label: str, reason: ev.CheckpointReason
    ) -> ev.Checkpoint:
        """Snapshot the work tree; raises CheckpointFailed."""


class ContextManager(Protocol):
    """What the loop needs of context management (agent/context/manager.py implements it)."""

    async def prepare(self, rt: Runtime, request: ModelRequest) -> ModelRequest:
        """The request to send now (cleared, or compacted first when the window is full)."""

    async def observe(self, rt: Runtime, sent: ModelRequest, response: ModelResponse) -> None:
        """Record what the server cleared."""

    async def recover_window(self, rt: Runtime) -> bool:
        """The window overflowed: compact once; True when the call can be retried."""


class Totals(TokenUsage):
    """Token usage and cost of the whole session (rebuilt from Usage events on resume)."""

    cost_usd: float = 0.0

    def add(self, usage: TokenUsage, cost: float) -> None:
        for name in TokenUsage.model_fields:
            setattr(self, name, getattr(self, name) + getattr(usage, name))
        self.cost_usd += cost

    @classmethod
    def of(cls, events: list[ev.Event]) -> Totals:
        """The sum of the Usage events among `events`."""
        totals = cls()
        for event in events:
            if isinstance(event, ev.Usage):
                totals.add(event, event.cost_usd)
        return totals

    def as_dict(self) -> dict[str, Any]:
        """The token counts alone (a run's `usage`)."""
        return {name: getattr(self, name) for name in TokenUsage.model_fields}


@dataclass
class Runtime:
    settings: Settings
    cwd: Path
    home: Path
    session: OpenedSession
    provider: Provider
    tools: list[Tool]
    # The system prompt without the parts that follow the session's state (plan mode).
    base_system: str
    policy: PermissionPolicy
    hooks: Hooks = field(default_factory=Hooks)
    approver: Approver | None = None
    # Optional collaborators wired by agent.build: checkpoints and context management.
    checkpointer: Checkpointer | None = None
    context: ContextManager | None = None
    tool_ctx: ToolContext = None  # type: ignore[assignment]
    # The project root (enclosing work tree; default cwd) and the instruction files read.
    root: Path | None = None
    instructions: list[Any] = field(default_factory=list)
    # The model spec the session is on (aliases resolved), and a provider built for a
    # ModelChanged about to be recorded (agent.build.switch_model).
    model_spec: str = ""
    pending_provider: tuple[str, Any] | None = None
    # False when the caller handed the provider in (it closes it); a built one is closed here.
    owns_provider: bool = True
    totals: Totals = field(default_factory=Totals)
    recorder: Recorder = field(init=False)
    # Claude Code's hooks: the settings' shell hooks and an SDK program's callbacks.
    hooks_of_session: SessionHooks = field(default_factory=SessionHooks)
    # The MCP servers (agent/mcp/session.py), when any is configured.
    mcp: Any = None
    # Set when a hook answered `continue: false`: the turn ends after the current step.
    stop_requested: str | None = None
    # Whether this runtime ran a prompt yet (SessionStart hooks run before the first).
    started: bool = False
    resumed: bool = False

    def __post_init__(self) -> None:
        if self.tool_ctx is None:
            self.tool_ctx = ToolContext(cwd=self.cwd)
        self.totals = Totals.of(self.session.events)
        self.recorder = Recorder(self.session, self.hooks)
        self.recorder.appliers.append(self._apply)

    @property
    def id(self) -> str:
        return self.session.id

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    @property
    def system(self) -> str:
        """The system prompt as the model is told it now (plan mode follows the policy)."""
        return for_mode(self.base_system, self.policy.mode)

    async def record(self, event: ev.Event, *, sync: bool = False) -> ev.Event:
        """Record `event`: the log, the derived state, the subscribers, the hooks."""
        return await self.recorder.record(event, sync=sync)

    def subscribe(self, fn: Callable[[ev.Event], None]) -> Callable[[], None]:
        """See every event from now on; returns the call that unsubscribes."""
        return self.recorder.subscribe(fn)

    def _apply(self, event: ev.Event) -> None:
        # The policy follows the recorded changes, so the log says why a call was allowed.
        if isinstance(event, ev.PermissionModeChanged):
            self.policy.mode = event.mode
            self.hooks_of_session.set_permission_mode(event.mode)
        elif isinstance(event, ev.RuleAdded):
            getattr(self.policy, event.kind).append(Rule.parse(event.rule))

    async def set_mode(self, mode: ev.PermissionMode) -> None:
        """Switch the permission mode (recorded as a PermissionModeChanged event)."""
        if mode not in ev.PermissionMode.__args__:
            raise ConfigError(f"Unknown permission mode {mode!r}")
        if mode != self.policy.mode:
            await self.record(
                ev.PermissionModeChanged(mode=mode, previous=self.policy.mode), sync=True
            )

    async def add_rule(self, rule: str, kind: str = "allow") -> None:
        """Add a permission rule for the rest of the session (recorded as RuleAdded)."""
        Rule.parse(rule)  # refuse a malformed rule before it is logged
        await self.record(ev.RuleAdded(rule=rule, kind=kind), sync=True)

    async def sync_mcp(self) -> None:
        """Report MCP servers that failed since the last call (once each) and drop their
        tools from what the model is offered."""
        if self.mcp is None:
            return
        for message in self.mcp.reports():
            await self.record(ev.Error(message=message, kind="mcp"))
        self.tools = self.mcp.prune(self.tools)

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
        await self.record(
            ev.Usage(
                model=model,
                cost_usd=cost,
                estimated=estimated,
                **usage.model_dump(),
                session_input_tokens=t.input_tokens,
                session_output_tokens=t.output_tokens,
                session_cache_read_input_tokens=t.cache_read_input_tokens,
                session_cache_creation_input_tokens=t.cache_creation_input_tokens,
                session_cost_usd=t.cost_usd,
            )
        )

    def watch_provider(self) -> None:
        """Point a provider that does long work on its first request (a local model loading
        its shards) at this session's Progress events (called before each turn and compaction,
        in the session's event loop)."""
        if hasattr(self.provider, "progress"):
            self.provider.progress = self._progress("load")

    def _progress(self, task: str) -> Callable[[int, int], None]:
        """A (done, total) callback, safe from any thread, that records Progress events."""
        loop = asyncio.get_running_loop()
        what, unit = {
            "snapshot": ("Snapshotting the work tree", "files"),
            "load": ("Loading the model", "shards"),
        }[task]

        def report(done: int, total: int) -> None:
            event = ev.Progress(
                task=task,  # type: ignore[arg-type]
                message=f"{what}: {done:,}/{total:,} {unit}",
                done=done,
                total=total,
                finished=done >= total,
            )
            loop.call_soon_threadsafe(self.recorder.write, event)

        return report

    async def checkpoint(self, turn: int, label: str, reason: ev.CheckpointReason) -> None:
        """Snapshot the work tree (when checkpoints are on) and log the checkpoint event."""
        if self.checkpointer is None:
            if reason == "turn_start":
                # No code snapshot, but the conversation can still be rewound to this turn.
                await self.record(
                    ev.Checkpoint(
                        id=secrets.token_hex(4),
                        turn=turn,
                        label=label,
                        reason=reason,
                        created_commit=False,
                    ),
                    sync=True,
                )
            return
        from agent.session.checkpointer import CheckpointFailed

        try:
            event = await asyncio.to_thread(
                self.checkpointer.snapshot, self.id, turn, label, reason, self._progress("snapshot")
            )
        except CheckpointFailed as exc:
            if exc.fatal:
                self.checkpointer = None
            await self.record(ev.Error(message=str(exc), kind="checkpoint"))
            return
        await self.record(event, sync=True)

    def close(self, reason: str = "other") -> None:
        from tools import close_all

        if self.hooks_of_session.has("SessionEnd"):
            _run_aside(self.hooks_of_session.session_end(reason))
        if self.mcp is not None:
            self.mcp.close()
        close_all(self.tool_ctx)
        if self.owns_provider:
            close_provider(self.provider)
        self.session.log.close()


def _run_aside(coro) -> None:
    """Run a coroutine to its end from synchronous code, whether or not an event loop is
    running in this thread (SessionEnd hooks at close; each hook has its own time limit)."""
    import threading

    thread = threading.Thread(target=asyncio.run, args=(coro,), daemon=True)
    thread.start()
    thread.join()
