"""Token accounting: how full the window is before a request is sent.

Three sources, best first:

1. The provider's own count (`provider.count_tokens(request)`, Anthropic's counting endpoint),
   see `count_request`.
2. The input tokens of the previous reply, plus an estimate of what was appended since
   (`TokenCounter.observe` then `TokenCounter.estimate_request`).
3. An estimate alone: the local tokenizer when one is given (`count_fn`), otherwise a
   byte heuristic.

The heuristic is `ceil(len(utf8 bytes) / 3.5)` per piece of text. Why bytes and 3.5: English
prose runs about 4 characters per token on the BPE vocabularies of Claude, GPT and DeepSeek,
while code and JSON run nearer 3 (punctuation, short identifiers and numbers split finely);
3.5 sits between so that neither is off by more than about 20%, and counting UTF-8 bytes rather
than characters makes CJK text (3 bytes, usually 1 token, per character) come out near right
instead of three times too low. Each message costs a few tokens of framing on top (role
markers, block delimiters, tool-call wrappers), which `MESSAGE_OVERHEAD` and `BLOCK_OVERHEAD`
account for. After every real reply `calibrate` rescales the estimate by how far it was off,
so the residual error follows the actual tokenizer rather than this guess.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from agent.messages import (
    Message,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

BYTES_PER_TOKEN = 3.5
# Role marker and turn delimiters of one message, in tokens (Claude and the chat templates of
# open models spend 3-5).
MESSAGE_OVERHEAD = 4
# Framing of one content block: a tool call's id and name wrapper, a result's id, etc.
BLOCK_OVERHEAD = 3
# Estimates are rescaled by at most this factor either way: a usage figure that disagrees by
# more is more likely a different request (cache accounting, a dropped image) than a tokenizer.
_MAX_RATIO = 4.0
# Below this many estimated tokens a calibration sample is mostly framing noise; ignore it.
_MIN_CALIBRATION_TOKENS = 200
# Texts at least this long are memoised: every request re-counts the whole conversation, and a
# real tokenizer over a long session's tool output is slow. Python caches a str's hash and a
# dict hit on the same object is an identity check, so a hit costs next to nothing.
_MEMO_MIN_CHARS = 256
_MEMO_MAX_ENTRIES = 8192


def heuristic_tokens(text: str) -> int:
    """Tokens in `text` by the byte heuristic (see the module docstring)."""
    if not text:
        return 0
    # surrogatepass: a lone surrogate (an undecodable file name) must not make counting fail.
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)


class ContextBreakdown(BaseModel):
    """Where the window goes, in tokens. The five parts sum to `total`."""

    system_prompt: int = Field(description="The system prompt (instructions, AGENTS.md).")
    tools: int = Field(description="Tool definitions sent with every request.")
    memory: int = Field(description="Memory-file text shown to the model.")
    conversation: int = Field(description="Messages other than tool results.")
    tool_results: int = Field(description="Tool-result blocks (what context editing clears).")
    total: int = Field(description="Sum of the parts above.")
    free: int = Field(description="Window left over (never below 0).")
    window: int = Field(description="The model's context window.")
    fraction: float = Field(description="total / window.")


class TokenCounter:
    """Estimates tokens of text, messages and requests; learns from real usage.

    `count_fn(text) -> int` is a real tokenizer (the local model's); without it the byte
    heuristic is used. Either way estimates are multiplied by `ratio`, which `calibrate` and
    `observe` keep in line with the provider's reported input tokens.
    """

    def __init__(self, count_fn: Callable[[str], int] | None = None) -> None:
        self.count_fn = count_fn
        self.ratio = 1.0
        self._memo: dict[str, int] = {}
        self._block_memo: dict[int, tuple[Any, Any, int]] = {}
        self._message_memo: dict[int, tuple[Message, tuple[int, ...], int]] = {}
        # The last real figure: input tokens of a request and the raw estimate of its parts, so
        # that the next request can be its real count plus an estimate of what was appended.
        self._anchor_tokens: int | None = None
        self._anchor_prefix: list[int] = []
        self._anchor_fixed = 0
        # The last message list walked and its per-message counts: a request's view is
        # estimated before it is sent and observed after, and walking it once is enough.
        self._walked: tuple[Sequence[Message] | None, int, list[int]] = (None, 0, [])

    # -- raw counts (uncalibrated, deterministic: safe to print into text the model sees) --

    def raw_text(self, text: str) -> int:
        """Tokens of `text` before calibration."""
        if not text:
            return 0
        if len(text) < _MEMO_MIN_CHARS:
            return self._count(text)
        tokens = self._memo.get(text)
        if tokens is None:
            if len(self._memo) >= _MEMO_MAX_ENTRIES:
                self._memo.clear()
            tokens = self._memo[text] = self._count(text)
        return tokens

    def _count(self, text: str) -> int:
        if self.count_fn is not None:
            return int(self.count_fn(text))
        return heuristic_tokens(text)

    def raw_block(self, block: Any) -> int:
        """Tokens of one content block before calibration (memoised per block object: the
        conversation keeps its blocks across calls, so each is counted once, not once a call)."""
        payload = _payload(block)
        hit = self._block_memo.get(id(block))
        if hit is not None and hit[0] is block and hit[1] is payload:
            return hit[2]
        tokens = self._raw_block(block)
        if len(self._block_memo) >= _MEMO_MAX_ENTRIES:
            self._block_memo.clear()
        # The block itself is kept so its id cannot be reused by another object, and its
        # payload so that a field assigned anew (blocks are mutable) is counted afresh.
        self._block_memo[id(block)] = (block, payload, tokens)
        return tokens

    def _raw_block(self, block: Any) -> int:
        if isinstance(block, TextBlock):
            body = self.raw_text(block.text)
        elif isinstance(block, ThinkingBlock):
            body = self.raw_text(block.thinking)
        elif isinstance(block, RedactedThinkingBlock):
            # Opaque and encrypted: base64 packs about 4 bytes per token-equivalent at most.
            body = math.ceil(len(block.data) / 4)
        elif isinstance(block, ToolUseBlock):
            body = self.raw_text(block.name) + self.raw_text(_json(block.input))
            if block.input_error:
                body += self.raw_text(block.input_error)
        elif isinstance(block, ToolResultBlock):
            body = self.raw_text(block.content)
        else:
            raise TypeError(f"not a content block: {type(block).__name__}")
        return body + BLOCK_OVERHEAD

    def raw_message(self, message: Message) -> int:
        """Tokens of one message before calibration (memoised per message object and its
        blocks, so a long conversation costs a lookup per message, not a recount)."""
        blocks = tuple(map(id, message.content))
        hit = self._message_memo.get(id(message))
        if (
            hit is not None
            and hit[0] is message
            and hit[1] == blocks
            and all(
                self._block_memo.get(b, (None, None))[1] is _payload(blk)
                for b, blk in zip(blocks, message.content)
            )
        ):
            return hit[2]
        tokens = MESSAGE_OVERHEAD + sum(self.raw_block(b) for b in message.content)
        if len(self._message_memo) >= _MEMO_MAX_ENTRIES:
            self._message_memo.clear()
        self._message_memo[id(message)] = (message, blocks, tokens)
        return tokens

    def raw_tools(self, tools: Iterable[Any]) -> int:
        """Tokens of tool definitions: dicts, strings, or `tools.base.Tool` objects."""
        total = 0
        for tool in tools:
            if isinstance(tool, str):
                total += self.raw_text(tool)
            elif isinstance(tool, dict):
                total += self.raw_text(_json(tool))
            elif hasattr(tool, "openai_spec"):
                # The JSON-schema spec is the larger of the two; Anthropic's built-in tool types
                # are billed at a similar fixed size, so it is the safer estimate.
                total += self.raw_text(_json(tool.openai_spec()))
            else:
                raise TypeError(f"cannot count tokens of tool {tool!r}")
            total += BLOCK_OVERHEAD
        return total

    # -- calibrated estimates --

    def scale(self, raw: int) -> int:
        """A raw count in calibrated tokens."""
        return math.ceil(raw * self.ratio) if raw else 0

    def estimate_text(self, text: str) -> int:
        """Estimated tokens of `text`."""
        return self.scale(self.raw_text(text))

    def estimate_message(self, message: Message) -> int:
        """Estimated tokens of one message."""
        return self.scale(self.raw_message(message))

    def estimate_messages(self, messages: Sequence[Message]) -> int:
        """Estimated tokens of a message list."""
        return self.scale(sum(self.raw_message(m) for m in messages))

    def estimate_request(
        self, system: str, tools: Sequence[Any], messages: Sequence[Message]
    ) -> int:
        """Estimated input tokens of a whole request.

        When `observe` saw a request whose messages are a prefix of these (same tokens per
        message), the answer is that request's real count plus an estimate of the rest, which
        is as good as an estimate gets without asking the provider.
        """
        fixed = self.raw_text(system) + self.raw_tools(tools)
        per_message = self._per_message(messages)
        anchor = self._anchor_tokens
        n = len(self._anchor_prefix)
        if (
            anchor is not None
            and fixed == self._anchor_fixed
            and n <= len(per_message)
            and per_message[:n] == self._anchor_prefix
        ):
            return anchor + self.scale(sum(per_message[n:]))
        return self.scale(fixed + sum(per_message))

    def _per_message(self, messages: Sequence[Message]) -> list[int]:
        """Raw tokens of each message; the same list object twice in a row (a request's view,
        estimated then observed) is walked once."""
        last, length, counts = self._walked
        if messages is last and len(messages) == length:
            return counts
        counts = [self.raw_message(m) for m in messages]
        self._walked = (messages, len(messages), counts)
        return counts

    # -- learning from real usage --

    def calibrate(self, actual_input_tokens: int, estimated: int) -> float:
        """Rescale future estimates by how far `estimated` (a calibrated estimate from this
        counter) was from the provider's `actual_input_tokens`. Returns the new ratio."""
        if actual_input_tokens <= 0 or estimated < _MIN_CALIBRATION_TOKENS:
            return self.ratio
        ratio = self.ratio * actual_input_tokens / estimated
        self.ratio = min(_MAX_RATIO, max(1.0 / _MAX_RATIO, ratio))
        return self.ratio

    def observe(
        self,
        actual_input_tokens: int,
        system: str,
        tools: Sequence[Any],
        messages: Sequence[Message],
        *,
        cleared_tokens: int = 0,
    ) -> None:
        """Record the real input tokens of a request that was sent: calibrates the ratio and
        anchors `estimate_request` for the next one. Pass what was sent (the edited view).

        `cleared_tokens` is what the server cleared from it (Anthropic's applied edits): the
        reported figure is after clearing, the estimate before, so it is added back for the
        calibration but not for the anchor (the next request is cleared the same way).
        """
        if actual_input_tokens <= 0:
            return
        fixed = self.raw_text(system) + self.raw_tools(tools)
        per_message = self._per_message(messages)
        self.calibrate(actual_input_tokens + cleared_tokens, self.scale(fixed + sum(per_message)))
        self._anchor_tokens = actual_input_tokens
        self._anchor_prefix = per_message
        self._anchor_fixed = fixed

    # -- where the window goes --

    def breakdown(
        self,
        system: str,
        tools: Sequence[Any],
        memory_text: str,
        messages: Sequence[Message],
        window: int,
        *,
        memory_tool: str = "memory",
    ) -> ContextBreakdown:
        """Tokens per part of the request and what is left of `window`. The memory part is
        `memory_text` plus the calls of `memory_tool` and their results."""
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        memory_ids = {
            block.id
            for message in messages
            for block in message.content
            if isinstance(block, ToolUseBlock) and block.name == memory_tool
        }
        results_raw = rest_raw = memory_raw = 0
        for message in messages:
            rest_raw += MESSAGE_OVERHEAD
            for block in message.content:
                if (
                    isinstance(block, ToolResultBlock)
                    and block.tool_use_id in memory_ids
                    or isinstance(block, ToolUseBlock)
                    and block.id in memory_ids
                ):
                    memory_raw += self.raw_block(block)
                elif isinstance(block, ToolResultBlock):
                    results_raw += self.raw_block(block)
                else:
                    rest_raw += self.raw_block(block)
        parts = {
            "system_prompt": self.estimate_text(system),
            "tools": self.scale(self.raw_tools(tools)),
            "memory": self.estimate_text(memory_text) + self.scale(memory_raw),
            "conversation": self.scale(rest_raw),
            "tool_results": self.scale(results_raw),
        }
        total = sum(parts.values())
        return ContextBreakdown(
            **parts,
            total=total,
            free=max(0, window - total),
            window=window,
            fraction=total / window,
        )


async def count_request(provider: Any, request: Any, counter: TokenCounter) -> tuple[int, bool]:
    """Input tokens of `request`: `(tokens, exact)`.

    Asks `provider.count_tokens` first (exact for Anthropic); when the provider cannot say
    (returns None) falls back to `counter.estimate_request`. A failing count is the caller's
    to handle (it raises the provider's error), because a wrong figure here is worse than none.
    """
    exact = await provider.count_tokens(request)
    if exact is not None:
        return int(exact), True
    return counter.estimate_request(request.system, request.tools, request.messages), False


_PAYLOAD_FIELD = {
    TextBlock: "text",
    ThinkingBlock: "thinking",
    RedactedThinkingBlock: "data",
    ToolResultBlock: "content",
    ToolUseBlock: "input",
}


def _payload(block: Any) -> Any:
    """The field whose identity changes when a block's content is replaced."""
    name = _PAYLOAD_FIELD.get(type(block))
    return block.__dict__.get(name) if name else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
