"""Turn a scripted `Reply` into the wire format of each API (events for streams, JSON otherwise).

Streams are lists of `(event_name, data)` pairs; the server writes each as one server-sent event
(`event:` line only for Anthropic, `data:` only for OpenAI, as the real services do).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.replies import RedactedThinking, Reply, Text, Thinking, ToolUse

SSEvent = tuple[str | None, Any]

# Anthropic stop reasons as Chat Completions finish reasons.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# --- Anthropic Messages API ----------------------------------------------------------------


def _anthropic_usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.usage.input_tokens,
        "cache_creation_input_tokens": reply.usage.cache_creation_input_tokens,
        "cache_read_input_tokens": reply.usage.cache_read_input_tokens,
        "output_tokens": output_tokens,
    }


def _anthropic_block(block: Any) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, Thinking):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, RedactedThinking):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    raise TypeError(f"unknown reply block {block!r}")


def anthropic_events(reply: Reply, model: str, msg_id: str) -> list[SSEvent]:
    """The full event sequence of a streamed Messages API response."""
    events: list[SSEvent] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": model,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": _anthropic_usage(reply, 1),
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(reply.blocks):
        if isinstance(block, Text):
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": p} for p in _pieces(block.text, reply.text_chunk)
            ]
        elif isinstance(block, Thinking):
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": p}
                for p in _pieces(block.thinking, reply.text_chunk)
            ]
            deltas.append({"type": "signature_delta", "signature": block.signature})
        elif isinstance(block, RedactedThinking):
            start, deltas = {"type": "redacted_thinking", "data": block.data}, []
        else:
            start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in _pieces(block.json_text(), reply.json_chunk)
            ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": reply.effective_stop_reason(), "stop_sequence": None},
        "usage": {"output_tokens": reply.usage.output_tokens},
    }
    if reply.applied_edits is not None:
        message_delta["context_management"] = {"applied_edits": reply.applied_edits}
    events.append(("message_delta", message_delta))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_json(reply: Reply, model: str, msg_id: str) -> dict[str, Any]:
    """A non-streamed Messages API response body."""
    body: dict[str, Any] = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [_anthropic_block(b) for b in reply.blocks],
        "stop_reason": reply.effective_stop_reason(),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply, reply.usage.output_tokens),
    }
    if reply.applied_edits is not None:
        body["context_management"] = {"applied_edits": reply.applied_edits}
    return body


def anthropic_error_event(reply: Reply) -> SSEvent:
    etype = reply.error_event_type
    return ("error", {"type": "error", "error": {"type": etype, "message": f"fake {etype}"}})


# --- OpenAI Chat Completions ---------------------------------------------------------------


def _openai_usage(reply: Reply) -> dict[str, Any]:
    prompt = reply.usage.input_tokens + reply.usage.cache_read_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": reply.usage.output_tokens,
        "total_tokens": prompt + reply.usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.usage.cache_read_input_tokens},
    }


def _chunk(msg_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict:
    return {
        "id": msg_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def openai_events(reply: Reply, model: str, msg_id: str, include_usage: bool) -> list[SSEvent]:
    """The chunks of a streamed Chat Completions response, ending with `[DONE]`."""
    events: list[SSEvent] = [(None, _chunk(msg_id, model, {"role": "assistant", "content": ""}))]
    tools = [b for b in reply.blocks if isinstance(b, ToolUse)]
    for block in reply.blocks:
        if isinstance(block, Thinking):
            for p in _pieces(block.thinking, reply.text_chunk):
                events.append((None, _chunk(msg_id, model, {"reasoning_content": p})))
        elif isinstance(block, Text):
            for p in _pieces(block.text, reply.text_chunk):
                events.append((None, _chunk(msg_id, model, {"content": p})))
    # One list of deltas per tool call: the first carries id and name, the rest the arguments.
    per_tool: list[list[dict[str, Any]]] = []
    for index, tool in enumerate(tools):
        first = {
            "index": index,
            "id": tool.id,
            "type": "function",
            "function": {"name": tool.name, "arguments": ""},
        }
        rest = [
            {"index": index, "function": {"arguments": p}}
            for p in _pieces(tool.json_text(), reply.json_chunk)
        ]
        per_tool.append([first, *rest])
    if reply.interleave_tool_calls:
        order = [d for group in round_robin(per_tool) for d in group]
    else:
        order = [d for group in per_tool for d in group]
    for delta in order:
        events.append((None, _chunk(msg_id, model, {"tool_calls": [delta]})))
    finish = FINISH_REASONS.get(reply.effective_stop_reason(), reply.effective_stop_reason())
    events.append((None, _chunk(msg_id, model, {}, finish)))
    if include_usage:
        usage_chunk = _chunk(msg_id, model, {})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _openai_usage(reply)
        events.append((None, usage_chunk))
    events.append((None, "[DONE]"))
    return events


def round_robin(groups: list[list[dict]]) -> list[list[dict]]:
    """Round robin over the groups: [[a0, b0], [a1, b1], [a2]] (interleaved parallel calls)."""
    rounds: list[list[dict]] = []
    for i in range(max((len(g) for g in groups), default=0)):
        rounds.append([g[i] for g in groups if i < len(g)])
    return rounds


def openai_json(reply: Reply, model: str, msg_id: str) -> dict[str, Any]:
    """A non-streamed Chat Completions response body."""
    text = "".join(b.text for b in reply.blocks if isinstance(b, Text))
    reasoning = "".join(b.thinking for b in reply.blocks if isinstance(b, Thinking))
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    tools = [b for b in reply.blocks if isinstance(b, ToolUse)]
    if tools:
        message["tool_calls"] = [
            {
                "id": t.id,
                "type": "function",
                "function": {"name": t.name, "arguments": t.json_text()},
            }
            for t in tools
        ]
    finish = FINISH_REASONS.get(reply.effective_stop_reason(), reply.effective_stop_reason())
    return {
        "id": msg_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _openai_usage(reply),
    }


def openai_error_body(reply: Reply) -> dict[str, Any]:
    inner = reply.error_body()["error"]
    return {"error": {"message": inner["message"], "type": inner["type"], "code": inner["type"]}}


def openai_error_event(reply: Reply) -> SSEvent:
    etype = reply.error_event_type
    return (None, {"error": {"message": f"fake {etype}", "type": etype, "code": etype}})


def encode_event(name: str | None, data: Any) -> bytes:
    """One server-sent event on the wire."""
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()
