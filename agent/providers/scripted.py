"""A provider that replays a script of turns: the demo, the UI and the tests run offline with it.

A script is a JSON list; each item is one model reply:

    {"text": "I'll look.", "thinking": "...", "tool_calls": [{"name": "bash", "input": {...}}],
     "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}}

`stop_reason` defaults to `tool_use` when there are tool calls, else `end_turn`. When the script
runs out, the provider answers that it has nothing more to say.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.events import TextDelta, ThinkingDelta
from agent.messages import Message, TextBlock, ThinkingBlock, ToolUseBlock
from agent.providers.base import ModelRequest, ModelResponse, StreamItem, TokenUsage


class ScriptedCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class ScriptedTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = ""
    thinking: str = ""
    tool_calls: list[ScriptedCall] = Field(default_factory=list)
    stop_reason: str | None = None
    usage: TokenUsage | None = None
    # Seconds to wait between streamed words (the demo uses it to look alive).
    delay: float = 0.0


class ScriptedProvider:
    """Replays `turns` in order, one per model call; records every request it was sent."""

    name = "scripted"

    def __init__(
        self,
        turns: list[ScriptedTurn | dict],
        *,
        model: str = "scripted",
        context_window: int = 200_000,
    ) -> None:
        self.turns = [
            t if isinstance(t, ScriptedTurn) else ScriptedTurn.model_validate(t) for t in turns
        ]
        self.model = model
        self.context_window = context_window
        self.requests: list[ModelRequest] = []
        self._next = 0
        self._ids = 0

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedProvider:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("turns", [])
            return cls(data, model=f"scripted:{Path(path).name}")
        except (OSError, json.JSONDecodeError, ValidationError, TypeError) as exc:
            raise ConfigError(f"Cannot load script {path}: {exc}") from exc

    def _turn(self) -> ScriptedTurn:
        if self._next < len(self.turns):
            turn = self.turns[self._next]
            self._next += 1
            return turn
        return ScriptedTurn(text="(The script has no more turns.)")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        self.requests.append(request)
        turn = self._turn()
        blocks: list = []
        if turn.thinking:
            for piece in _pieces(turn.thinking):
                yield ThinkingDelta(text=piece)
                await asyncio.sleep(turn.delay)
            blocks.append(ThinkingBlock(thinking=turn.thinking, signature="scripted"))
        if turn.text:
            for piece in _pieces(turn.text):
                yield TextDelta(text=piece)
                await asyncio.sleep(turn.delay)
            blocks.append(TextBlock(text=turn.text))
        for call in turn.tool_calls:
            self._ids += 1
            blocks.append(
                ToolUseBlock(
                    id=call.id or f"toolu_scripted_{self._ids:04d}",
                    name=call.name,
                    input=call.input,
                )
            )
        stop = turn.stop_reason or ("tool_use" if turn.tool_calls else "end_turn")
        usage = turn.usage or TokenUsage(
            input_tokens=sum(len(m.model_dump_json()) for m in request.messages) // 4,
            output_tokens=max(1, len(turn.text + turn.thinking) // 4),
        )
        yield ModelResponse(
            message=Message(role="assistant", content=blocks),
            stop_reason=stop,
            usage=usage,
            model=self.model,
        )

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return None

    def cost(self, usage: TokenUsage) -> float:
        return 0.0


def _pieces(text: str) -> list[str]:
    """Split into word-sized chunks the way a real stream arrives."""
    out, word = [], ""
    for ch in text:
        word += ch
        if ch.isspace():
            out.append(word)
            word = ""
    if word:
        out.append(word)
    return out
