"""SDK hooks: before a tool call (may deny it or change its input), after it, and on every event."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tools.base import ToolResult


@dataclass
class ToolCallInfo:
    """What a hook sees of a tool call."""

    id: str
    name: str
    input: dict[str, Any]
    session_id: str


@dataclass
class PreToolDecision:
    """Returned by a before-tool hook: `deny` (a reason the model reads) or a new `input`."""

    deny: str | None = None
    input: dict[str, Any] | None = None


BeforeTool = Callable[[ToolCallInfo], PreToolDecision | None | Awaitable[PreToolDecision | None]]
AfterTool = Callable[[ToolCallInfo, ToolResult], None | Awaitable[None]]
OnEvent = Callable[[Any], None | Awaitable[None]]


@dataclass
class Hooks:
    before_tool: list[BeforeTool] = field(default_factory=list)
    after_tool: list[AfterTool] = field(default_factory=list)
    on_event: list[OnEvent] = field(default_factory=list)


async def call(fn: Callable, *args: Any) -> Any:
    """Call a hook that may be sync or async."""
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out
