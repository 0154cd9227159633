"""Shared pieces of the provider tests: stand-in tools, fast retries, collecting a stream."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent.events import Retry, TextDelta, ThinkingDelta
from agent.messages import Message
from agent.providers.base import ModelRequest, ModelResponse
from agent.providers.retry import RetryPolicy
from tools.base import function_spec

# Tests wait milliseconds, not seconds, between retries (and no jitter, so delays are exact).
FAST = RetryPolicy(max_retries=4, base_delay_s=0.01, max_delay_s=2.0, jitter=0.0)


class _Args(BaseModel):
    path: str = "."


class StandInTool:
    """A tool with the real protocol's spec methods (the tools package is written in parallel)."""

    input_model = _Args

    def __init__(self, name: str, builtin_type: str | None = None) -> None:
        self.name = name
        self.builtin_type = builtin_type

    def description(self) -> str:
        return f"The {self.name} tool."

    def anthropic_spec(self) -> dict[str, Any]:
        if self.builtin_type:
            return {"type": self.builtin_type, "name": self.name}
        return {
            "name": self.name,
            "description": self.description(),
            "input_schema": self.input_model.model_json_schema(),
        }

    def openai_spec(self) -> dict[str, Any]:
        return function_spec(self.name, self.description(), self.input_model)


def godwit_tools() -> list[StandInTool]:
    """The five tools Claude sees, with Anthropic's built-in types where they exist."""
    return [
        StandInTool("str_replace_based_edit_tool", "text_editor_20250728"),
        StandInTool("bash", "bash_20250124"),
        StandInTool("memory", "memory_20250818"),
        StandInTool("glob"),
        StandInTool("grep"),
    ]


def request(*messages: Message, **kw: Any) -> ModelRequest:
    return ModelRequest(
        system=kw.pop("system", "You are a test."),
        messages=list(messages) or [Message.user("hi")],
        **kw,
    )


async def collect(provider: Any, req: ModelRequest) -> list[Any]:
    """Every item the provider streams for `req`."""
    return [item async for item in provider.stream(req)]


def final(items: list[Any]) -> ModelResponse:
    assert isinstance(items[-1], ModelResponse), items[-1]
    assert sum(isinstance(i, ModelResponse) for i in items) == 1
    return items[-1]


def retries(items: list[Any]) -> list[Retry]:
    return [i for i in items if isinstance(i, Retry)]


def text_after_last_retry(items: list[Any]) -> str:
    """What a consumer shows: deltas from before a Retry are void."""
    shown: list[str] = []
    for item in items:
        if isinstance(item, Retry):
            shown.clear()
        elif isinstance(item, (TextDelta,)):
            shown.append(item.text)
    return "".join(shown)


def thinking_text(items: list[Any]) -> str:
    return "".join(i.text for i in items if isinstance(i, ThinkingDelta))
