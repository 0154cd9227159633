"""Godwit's runtime: loop, events, sessions, providers, permissions, context, SDK, CLI, UI.

`from agent import Agent` is the SDK entry point; it is imported lazily so that `godwit --help`
and the listings stay fast.
"""

from typing import Any

__all__ = ["Agent", "Hooks", "PreToolDecision", "RunResult", "ToolCallInfo", "tool"]


def __getattr__(name: str) -> Any:
    if name in ("Agent", "RunResult"):
        from agent import sdk

        return getattr(sdk, name)
    if name in ("Hooks", "PreToolDecision", "ToolCallInfo"):
        from agent import hooks

        return getattr(hooks, name)
    if name == "tool":
        from agent.function_tool import tool

        return tool
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
