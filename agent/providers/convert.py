"""Our conversation (Messages-API-shaped blocks) as each API's request body, and tool input back.

Kept apart from the providers so that the conversion can be read, and tested, without a network.
"""

from __future__ import annotations

import json
from typing import Any

from agent.messages import (
    Message,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from agent.providers.base import TokenUsage

EPHEMERAL = {"type": "ephemeral"}
# Anthropic allows four cache breakpoints per request.
MAX_BREAKPOINTS = 4


def parse_tool_input(raw: str) -> tuple[dict[str, Any], str | None]:
    """Joined tool-input JSON -> (input, error). Bad JSON gives ({}, a message quoting it)."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        return {}, f"The tool input was not valid JSON ({err.msg} at char {err.pos}): {raw}"
    if not isinstance(value, dict):
        return {}, f"The tool input must be a JSON object, got: {raw}"
    return value, None


# --- Anthropic ---------------------------------------------------------------------------------


def anthropic_block(block: Any) -> dict[str, Any] | None:
    """One block for the Messages API; None for a block Anthropic cannot take back."""
    if isinstance(block, TextBlock):
        # The API rejects empty text blocks.
        return {"type": "text", "text": block.text} if block.text else None
    if isinstance(block, ThinkingBlock):
        # Thinking without a signature came from another provider; Anthropic would reject it.
        if not block.signature:
            return None
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, ToolResultBlock):
        out: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": block.tool_use_id,
            "content": block.content,
        }
        images = getattr(block, "images", None)
        if images:
            # The Messages API takes images inside a tool result, beside its text.
            out["content"] = (
                [{"type": "text", "text": block.content}] if block.content else []
            ) + [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": i["media_type"], "data": i["data"]},
                }
                for i in images
            ]
        if block.is_error:
            out["is_error"] = True
        return out
    raise TypeError(f"unknown block type {type(block).__name__}")


def anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The conversation as Messages API `messages` (thinking and signatures unchanged)."""
    out = []
    for message in messages:
        blocks = [b for b in (anthropic_block(x) for x in message.content) if b is not None]
        if not blocks:
            # An all-dropped message would break the user/assistant alternation; a placeholder
            # keeps the turn without inventing content the model could act on.
            blocks = [{"type": "text", "text": "(empty)"}]
        out.append({"role": message.role, "content": blocks})
    return out


def _cacheable(block: dict[str, Any]) -> bool:
    # Thinking blocks cannot carry cache_control; the API rejects it.
    return block.get("type") not in ("thinking", "redacted_thinking")


def _mark_last(blocks: list[dict[str, Any]]) -> bool:
    for block in reversed(blocks):
        if _cacheable(block):
            block["cache_control"] = dict(EPHEMERAL)
            return True
    return False


def place_cache_breakpoints(
    system: list[dict[str, Any]], tools: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> int:
    """Put prompt-cache breakpoints where a growing session re-reads its prefix; returns how many.

    In order: the system prompt's last block, the last tool (tools come first in the cached
    prefix), the last message (the moving end, written to the cache now), and the user turn
    before it (last call's moving end: what this call reads back from the cache). At most four,
    the API's limit. Mutates the given lists."""
    placed = 0
    if system and _mark_last(system):
        placed += 1
    if tools:
        tools[-1] = {**tools[-1], "cache_control": dict(EPHEMERAL)}
        placed += 1
    targets = messages[-1:]
    earlier_users = [m for m in messages[:-1] if m["role"] == "user"]
    if earlier_users:
        targets.append(earlier_users[-1])
    for message in targets:
        if placed >= MAX_BREAKPOINTS:
            break
        if _mark_last(message["content"]):
            placed += 1
    return placed


def anthropic_usage(usage: dict[str, Any]) -> TokenUsage:
    """A Messages API usage object as TokenUsage (absent or null counts are 0)."""
    return TokenUsage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
    )


# --- OpenAI Chat Completions ---------------------------------------------------------------


def openai_messages(
    system: str, messages: list[Message], *, send_reasoning: bool = False
) -> list[dict[str, Any]]:
    """The conversation as Chat Completions messages.

    System first; an assistant message becomes text + `tool_calls` (and `reasoning_content`
    when `send_reasoning`); each tool result becomes a `role: tool` message, placed before any
    text of the same user turn, because tool messages must follow the assistant's calls."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for message in messages:
        if message.role == "assistant":
            out.append(_openai_assistant(message, send_reasoning))
            continue
        texts = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                content = block.content
                images = getattr(block, "images", None)
                if images:
                    # A `tool` message carries text only: say what was left out.
                    content += "".join(
                        f"\n[the tool returned an image ({i['media_type']}); "
                        "this model connection cannot show it]"
                        for i in images
                    )
                if block.is_error:
                    # Chat Completions has no is_error flag; say it in the content.
                    content = f"Error: {content}"
                out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": content})
            elif isinstance(block, TextBlock):
                texts.append(block.text)
        if texts:
            # Separate blocks (a compaction summary, then the next prompt) stay separate.
            out.append({"role": "user", "content": "\n\n".join(texts)})
    return out


def _openai_assistant(message: Message, send_reasoning: bool) -> dict[str, Any]:
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    entry: dict[str, Any] = {"role": "assistant", "content": text or None}
    if send_reasoning:
        reasoning = "".join(b.thinking for b in message.content if isinstance(b, ThinkingBlock))
        if reasoning:
            entry["reasoning_content"] = reasoning
    calls = [
        {
            "id": b.id,
            "type": "function",
            "function": {"name": b.name, "arguments": json.dumps(b.input)},
        }
        for b in message.content
        if isinstance(b, ToolUseBlock)
    ]
    if calls:
        entry["tool_calls"] = calls
    elif entry["content"] is None:
        entry["content"] = ""
    return entry


def openai_usage(usage: dict[str, Any] | None) -> TokenUsage:
    """Chat Completions usage as TokenUsage; cached prompt tokens count as cache reads only."""
    if not usage:
        return TokenUsage()
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    prompt = usage.get("prompt_tokens") or 0
    return TokenUsage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=usage.get("completion_tokens") or 0,
        cache_read_input_tokens=cached,
    )
