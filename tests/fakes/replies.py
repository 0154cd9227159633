"""What the fake LLM server answers: scripted replies and the faults injected into them.

A `Reply` is provider-neutral (blocks in the Messages API's vocabulary); the server renders it as
an Anthropic Messages response or an OpenAI Chat Completions response depending on the endpoint
that was called. Build replies with the small functions at the bottom:

    server.push(say("Hello"))
    server.push(call("bash", {"command": "ls"}, text="Let me look."))
    server.push(http_error(429, retry_after=0.2), say("Now it works"))
    server.push(say("cut short", drop_after=3))
    server.push(recorded(Path("fixtures/anthropic-streams/basic_response.txt")))
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


@dataclass
class Text:
    text: str


@dataclass
class Thinking:
    thinking: str
    # Anthropic returns an opaque signature that must come back unchanged; OpenAI-compatible
    # servers (reasoning_content) have none.
    signature: str = "sig-fake-0001"


@dataclass
class RedactedThinking:
    data: str


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: _next_id("toolu_fake_"))
    # Sent instead of json.dumps(input) when set: lets a test send tool input that is not JSON.
    raw_json: str | None = None

    def json_text(self) -> str:
        return self.raw_json if self.raw_json is not None else json.dumps(self.input)


ReplyBlock = Text | Thinking | RedactedThinking | ToolUse


@dataclass
class Usage:
    # None: the server reports about a token per 4 bytes of the request, as a real one would
    # report a count that grows with the conversation.
    input_tokens: int | None = None
    output_tokens: int = 5
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


# The error `type` each status carries in an Anthropic error body.
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted answer to one request (a fault included: each retry consumes a reply)."""

    blocks: list[ReplyBlock] = field(default_factory=list)
    # None: tool_use when the reply calls a tool, else end_turn.
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    # None: echo the model the request named.
    model: str | None = None
    # Anthropic context_management.applied_edits, sent on message_delta (or in the JSON body).
    applied_edits: list[dict[str, Any]] | None = None

    # --- faults -------------------------------------------------------------------------
    # A status other than 200 answers with an error body instead of the reply.
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Streamed: send this many events, then an `error` event (e.g. overloaded_error) and stop.
    error_event_after: int | None = None
    error_event_type: str = "overloaded_error"
    # Streamed: send this many events, then close the socket abruptly (mid chunked body).
    drop_after: int | None = None
    # Streamed: send this many events, then end the body cleanly without the final event.
    truncate_after: int | None = None
    # Streamed: seconds to sleep before each event (slow chunks, read timeouts).
    event_delay_s: float = 0.0
    # Tool input JSON is split into pieces of this many characters (mid-key on purpose).
    json_chunk: int = 7
    # Text and thinking are split into pieces of this many characters.
    text_chunk: int = 12
    # OpenAI only: send the pieces of parallel tool calls interleaved (round robin by index).
    interleave_tool_calls: bool = False

    # --- recorded bodies ----------------------------------------------------------------
    # A raw server-sent-event body replayed byte for byte (Anthropic or OpenAI format).
    raw_sse: str | None = None
    # A raw JSON body for a non-streamed request.
    raw_json: dict[str, Any] | None = None

    def effective_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(isinstance(b, ToolUse) for b in self.blocks) else "end_turn"

    def error_body(self) -> dict[str, Any]:
        """The Anthropic-shaped error body (the OpenAI renderer re-shapes it)."""
        etype = self.error_type or ANTHROPIC_ERROR_TYPES.get(self.status, "api_error")
        message = self.error_message or f"fake server error {self.status} ({etype})"
        return {"type": "error", "error": {"type": etype, "message": message}}


# --- builders --------------------------------------------------------------------------------


def say(text: str, **faults: Any) -> Reply:
    """A plain text reply (keyword arguments set Reply fields: stop_reason, usage, faults)."""
    return Reply(blocks=[Text(text)], **faults)


def think_then_say(
    thinking: str, text: str, *, signature: str = "sig-fake-0001", **faults: Any
) -> Reply:
    """A reply with a thinking block (and its signature) before the text."""
    return Reply(blocks=[Thinking(thinking, signature), Text(text)], **faults)


def call(
    name: str,
    input: dict[str, Any] | None = None,
    *,
    text: str | None = None,
    id: str | None = None,
    raw_json: str | None = None,
    **faults: Any,
) -> Reply:
    """A reply that calls one tool (after an optional sentence of text)."""
    tool = ToolUse(name, input or {}, raw_json=raw_json)
    if id is not None:
        tool.id = id
    blocks: list[ReplyBlock] = [Text(text)] if text else []
    return Reply(blocks=[*blocks, tool], **faults)


def calls(*tools: ToolUse, text: str | None = None, **faults: Any) -> Reply:
    """A reply that calls several tools in parallel."""
    blocks: list[ReplyBlock] = [Text(text)] if text else []
    return Reply(blocks=[*blocks, *tools], **faults)


def http_error(
    status: int,
    *,
    message: str | None = None,
    error_type: str | None = None,
    retry_after: float | str | None = None,
    retry_after_ms: float | None = None,
) -> Reply:
    """An HTTP error answer (429, 500, 529, 404 ...), optionally with retry-after headers."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    return Reply(status=status, error_type=error_type, error_message=message, headers=headers)


def overloaded() -> Reply:
    """HTTP 529 overloaded_error, as Anthropic sends under load."""
    return http_error(529, message="Overloaded")


def recorded(source: str | Path) -> Reply:
    """Replay a recorded server-sent-event body (a path to a .txt file, or the text itself)."""
    text = source.read_text() if isinstance(source, Path) else source
    return Reply(raw_sse=text)
