"""The Python SDK: `from agent import Agent`.

agent = Agent(cwd="repo", model="anthropic:claude-sonnet-4-5", permission_mode="acceptEdits")
result = agent.run("fix the failing test")
print(result.result, result.usage, result.cost_usd)

async for event in agent.stream("and now the docs"):
    ...
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, Field

from agent import events as ev
from agent import loop
from agent.build import Options, open_runtime
from agent.errors import UsageError
from agent.hooks import Hooks
from agent.permissions import Approver
from agent.runtime import Runtime, Totals


class RunResult(BaseModel):
    """What `Agent.run` returns (and the headless `result` line carries)."""

    session_id: str
    result: str
    is_error: bool
    stop_reason: str
    num_turns: int
    duration_ms: int
    usage: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    errors: list[str] = Field(default_factory=list)


class Agent:
    """A Godwit session you can drive from Python."""

    def __init__(
        self,
        cwd: str | Path = ".",
        *,
        model: str | None = None,
        permission_mode: str | None = None,
        system_prompt: str | None = None,
        max_turns: int | None = None,
        tools: Iterable[Any] = (),
        hooks: Hooks | None = None,
        can_use_tool: Approver | None = None,
        base_url: str | None = None,
        thinking_budget: int | None = None,
        settings: dict[str, Any] | None = None,
        provider: Any = None,
        home: str | Path | None = None,
        session_id: str | None = None,
        fork: bool = False,
        continue_latest: bool = False,
        mcp_config: Iterable[str] = (),
        strict_mcp_config: bool = False,
    ) -> None:
        overrides = dict(settings or {})
        for key, value in (
            ("model", model),
            ("permission_mode", permission_mode),
            ("system_prompt", system_prompt),
            ("max_turns", max_turns),
            ("base_url", base_url),
            ("thinking_budget", thinking_budget),
        ):
            if value is not None:
                overrides[key] = value
        self.options = Options(
            cwd=Path(cwd),
            overrides=overrides,
            extra_tools=list(tools),
            hooks=hooks or Hooks(),
            approver=can_use_tool,
            provider=provider,
            home=Path(home) if home is not None else None,
            resume=session_id,
            fork=fork,
            continue_latest=continue_latest,
            mcp_config=list(mcp_config),
            strict_mcp_config=strict_mcp_config,
        )
        self._rt: Runtime | None = None
        self._task: asyncio.Task | None = None
        self._task_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        # The blocking methods share one event loop: the SDK clients' connection pools are
        # bound to the loop they were first used on.
        self._runner: asyncio.Runner | None = None

    # -- construction -------------------------------------------------------------------

    @classmethod
    def resume(cls, session_id: str, **kwargs: Any) -> Agent:
        """Continue a saved session (a unique id prefix is enough)."""
        agent = cls(session_id=session_id, **kwargs)
        agent.runtime()  # fail now, not at the first prompt, if the session cannot be read
        return agent

    def runtime(self) -> Runtime:
        """The live session, opened (or resumed) on first use."""
        with self._lock:
            if self._rt is None:
                self._rt = open_runtime(self.options)
            return self._rt

    @property
    def session_id(self) -> str:
        return self.runtime().id

    @property
    def events(self) -> list[ev.Event]:
        return list(self.runtime().session.events)

    def messages(self) -> list[dict[str, Any]]:
        """The conversation the model will see next, as plain dicts."""
        return [m.model_dump() for m in self.runtime().session.conversation.messages()]

    def subscribe(self, fn: Callable[[ev.Event], None]) -> Callable[[], None]:
        """Call `fn(event)` for every event of the session from now on, whatever records it
        (a prompt, a rewind, a compaction, a mode change); returns the call that unsubscribes."""
        return self.runtime().subscribe(fn)

    # -- permissions -------------------------------------------------------------------

    def set_approver(self, can_use_tool: Approver | None) -> None:
        """Who is asked when the policy says ask (None: such calls are refused)."""
        self.options.approver = can_use_tool
        if self._rt is not None:
            self._rt.approver = can_use_tool

    @property
    def permission_mode(self) -> str:
        return self.runtime().policy.mode

    def set_permission_mode(self, mode: str) -> None:
        """Switch the permission mode for the rest of the session (logged as an event)."""
        self._blocking(
            self.aset_permission_mode(mode), "set_permission_mode", "aset_permission_mode"
        )

    async def aset_permission_mode(self, mode: str) -> None:
        await self.runtime().set_mode(mode)  # type: ignore[arg-type]

    @property
    def model(self) -> str:
        """The model spec the next request goes to (aliases resolved)."""
        return self.runtime().model_spec

    def set_model(self, spec: str) -> str:
        """Switch model mid-session (`sonnet`, `anthropic:ID`, `openai:ID`...): the next
        request uses it, a resumed session keeps it; recorded as a ModelChanged event.
        Returns the resolved spec."""
        return self._blocking(self.aset_model(spec), "set_model", "aset_model")

    async def aset_model(self, spec: str) -> str:
        from agent.build import switch_model

        return await switch_model(self.runtime(), spec)

    def add_rule(self, rule: str, kind: str = "allow") -> None:
        """Add an allow (deny, ask) rule such as `bash(git status)` for the rest of the
        session (logged as an event)."""
        self._blocking(self.aadd_rule(rule, kind), "add_rule", "aadd_rule")

    async def aadd_rule(self, rule: str, kind: str = "allow") -> None:
        await self.runtime().add_rule(rule, kind)

    def add_hook_source(self, make: Callable[[Runtime], Any]) -> None:
        """Add hooks in Claude Code's format beside the settings' shell hooks: `make(runtime)`
        returns an object with `has(event)` and `run(event, fields, match=...)` (see
        agent/command_hooks/session.py)."""
        self.options.hook_sources.append(make)
        if self._rt is not None:
            self._rt.hooks_of_session.add(make(self._rt))

    # -- MCP servers ---------------------------------------------------------------------

    def mcp_status(self) -> list[dict[str, Any]]:
        """One row per MCP server: name, source, transport, state, error, tools."""
        rt = self.runtime()
        return rt.mcp.status() if rt.mcp is not None else []

    # -- running -----------------------------------------------------------------------

    async def stream(self, prompt: str) -> AsyncIterator[ev.Event]:
        """Run one prompt, yielding every event as it happens (deltas included)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError("prompt must be a non-empty string")
        rt = self.runtime()
        if self._task is not None and not self._task.done():
            raise UsageError("this Agent is already running a prompt; await it or cancel() it")
        queue: asyncio.Queue = asyncio.Queue()
        done = object()

        async def produce() -> None:
            try:
                await loop.run(rt, prompt, max_calls=rt.settings.max_turns)
            finally:
                queue.put_nowait(done)

        unsubscribe = rt.subscribe(queue.put_nowait)
        self._task_loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(produce())
        try:
            while (item := await queue.get()) is not done:
                yield item
            await self._task
        finally:
            unsubscribe()
            if not self._task.done():
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

    async def arun(self, prompt: str) -> RunResult:
        """Run one prompt to its end and return the result."""
        start = time.monotonic()
        first_usage = len(self.runtime().session.events)
        end: ev.TurnEnd | None = None
        errors: list[str] = []
        async for event in self.stream(prompt):
            if isinstance(event, ev.TurnEnd):
                end = event
            elif isinstance(event, ev.Error):
                errors.append(event.message)
        assert end is not None  # the loop always ends a turn
        return self.result_of(end, errors, start, first_usage)

    def run(self, prompt: str) -> RunResult:
        """Blocking `arun` for scripts (not from inside a running event loop)."""
        return self._blocking(self.arun(prompt), "run", "arun")

    def _blocking(self, coro, name: str, async_name: str):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(coro)
        coro.close()
        raise UsageError(
            f"Agent.{name}() was called inside an event loop; use `await agent.{async_name}()`"
        )

    def cancel(self) -> None:
        """Interrupt the running prompt: the partial reply is kept, a running tool is stopped."""
        task, task_loop = self._task, self._task_loop
        if task is None or task.done() or task_loop is None:
            return
        task_loop.call_soon_threadsafe(task.cancel)

    def result_of(self, end: ev.TurnEnd, errors: list[str], start: float, since: int) -> RunResult:
        """The RunResult of a turn that ended with `end`, counting usage logged after `since`."""
        rt = self.runtime()
        totals = Totals.of(rt.session.events[since:])
        is_error = end.reason in ("error", "interrupted", "max_turns", "refusal")
        return RunResult(
            session_id=rt.id,
            result=end.result,
            is_error=is_error,
            stop_reason=end.reason,
            num_turns=end.turns,
            duration_ms=int((time.monotonic() - start) * 1000),
            usage=totals.as_dict(),
            cost_usd=round(totals.cost_usd, 6),
            errors=errors,
        )

    # -- checkpoints and context (agent/rewind.py, agent/context_runtime.py) --------------

    def checkpoints(self) -> list[dict[str, Any]]:
        from agent.session import rewind

        return rewind.list_checkpoints(self.runtime())

    def diff(self, checkpoint: str) -> dict[str, Any]:
        from agent.session import rewind

        return rewind.diff(self.runtime(), checkpoint)

    def rewind(self, checkpoint: str, restore: str = "both") -> dict[str, Any]:
        """Restore code, conversation or both to `checkpoint`; undo with `undo_rewind()`."""
        return self._blocking(self.arewind(checkpoint, restore), "rewind", "arewind")

    async def arewind(self, checkpoint: str, restore: str = "both") -> dict[str, Any]:
        from agent.session import rewind

        return await rewind.rewind(self.runtime(), checkpoint, restore)

    def undo_rewind(self) -> dict[str, Any]:
        """Bring back exactly what the last rewind replaced."""
        return self._blocking(self.aundo_rewind(), "undo_rewind", "aundo_rewind")

    async def aundo_rewind(self) -> dict[str, Any]:
        from agent.session import rewind

        return await rewind.undo_rewind(self.runtime())

    def compact(self, instructions: str | None = None) -> dict[str, Any]:
        """Summarise the older conversation now (what the model sees; the log keeps all)."""
        return self._blocking(self.acompact(instructions), "compact", "acompact")

    async def acompact(self, instructions: str | None = None) -> dict[str, Any]:
        from agent.context import manager as context_runtime

        return await context_runtime.compact_async(self.runtime(), instructions)

    def context_usage(self) -> dict[str, Any]:
        """Where the context window goes, with each instruction file's share of the system
        prompt (`instruction_files`: label, path, tokens)."""
        from agent.context import manager as context_runtime

        return context_runtime.breakdown(self.runtime())

    @property
    def saved(self) -> bool:
        """Whether the session is on disk, so that it can be resumed (a new session is
        written from its first prompt on)."""
        return self._rt is not None and getattr(self._rt.session.log, "written", True)

    def switch_session(self, session_id: str | None = None) -> None:
        """Leave this session (it stays on disk, resumable) for `session_id`, or for a new
        session when None: the UI's /resume and /clear."""
        if self._task is not None and not self._task.done():
            raise UsageError("a prompt is running; wait for it or cancel() it first")
        with self._lock:
            if self._rt is not None:
                self._rt.close()
                self._rt = None
            self.options.resume = session_id
            self.options.continue_latest = self.options.fork = False

    def close(self) -> None:
        """End the session's processes (the bash shell) and close the log; using the Agent
        again reopens the same session (a new one if nothing was sent in it)."""
        if self._rt is not None:
            if self.saved:
                self.options.resume = self._rt.id
                self.options.continue_latest = self.options.fork = False
            self._rt.close()
            self._rt = None
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
