"""Compaction: when clearing tool results is not enough, summarise the older conversation.

The session's own model writes the summary. `compact` picks where to cut (`choose_cut`), renders
everything before the cut as a plain-text transcript, asks the provider for a structured
summary and returns it with the cut. The caller logs a `Compaction` event at the log position
of the cut; the conversation rebuild then replaces everything before it by `summary_message`.

The transcript is text rather than the native message list on purpose: it needs no tool
definitions (Anthropic refuses tool blocks without them), no thinking signatures, works the
same with every provider, and lets huge tool outputs be shortened so that the summary request
itself always fits in the window it is trying to relieve.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.context.tokens import TokenCounter
from agent.errors import GodwitError, ProviderError
from agent.events import Error
from agent.messages import (
    Message,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from agent.providers.base import ModelRequest, ModelResponse, TokenUsage

# Same words as the conversation rebuild's prefix, so a summary reads alike however it is built.
SUMMARY_PREFIX = (
    "This session was compacted: the earlier conversation is replaced by this summary of it.\n\n"
)

SUMMARY_SYSTEM = (
    "You write the hand-over notes of a coding agent's session. The agent is about to lose "
    "the conversation below and will continue the work from your notes and the last few "
    "messages alone, so anything you leave out is forgotten. Be concrete and complete; do not "
    "call tools."
)

SUMMARY_INSTRUCTIONS = """\
Write the hand-over notes for the conversation in the transcript above, under these headings:

## Task
What the user asked for, keeping their exact words for requirements and constraints, and any \
later change of mind. If the transcript starts with an earlier summary, carry its content over.

## Decisions
What was decided and why; approaches tried and dropped, and why they failed.

## Files
Every file read, created or changed: its path, what changed in it, and why it matters.

## Commands and results
Commands that matter (tests, builds, scripts) and their latest outcome. Quote unresolved error \
messages exactly.

## Current state
What works, what is broken, and exactly where the work stopped.

## Next steps
What remains to be done, in order, starting with what the agent was about to do.

Use exact paths, names and numbers. Leave out pleasantries and finished work that no longer \
matters. Reply with the notes only."""

# Shortening of the transcript, tried in order until it fits: (tool result chars, text chars).
_SHORTENINGS = [(4000, 16000), (2000, 8000), (800, 4000), (300, 2000), (0, 1000)]


class CompactionError(GodwitError):
    """Compaction could not be done; the session goes on uncompacted."""


@dataclass
class CompactionResult:
    """A summary of `messages[:cut_index]`, which it replaces in what the model sees."""

    summary: str
    cut_index: int
    tokens_before: int
    tokens_after: int
    # The summary call's own usage, for the session's Usage totals.
    usage: TokenUsage = field(default_factory=TokenUsage)
    model: str = ""


def summary_message(summary: str) -> Message:
    """The user message that stands for everything before a compaction's boundary."""
    return Message.user(SUMMARY_PREFIX + summary)


def _is_turn_start(message: Message) -> bool:
    return (
        message.role == "user"
        and any(isinstance(b, TextBlock) for b in message.content)
        and not any(isinstance(b, ToolResultBlock) for b in message.content)
    )


def valid_cuts(messages: Sequence[Message]) -> list[int]:
    """Indices where the conversation may be cut: never between a tool_use and its result.

    Index i is valid when messages[i] starts a user turn or is an assistant message, and no
    call made before i has its result at or after i.
    """
    n = len(messages)
    used_at: dict[str, int] = {}
    # Difference array: the running sum at i counts calls made before i whose result comes at
    # or after i (a cut at i would separate them).
    delta = [0] * (n + 2)
    for i, message in enumerate(messages):
        for b in message.content:
            if isinstance(b, ToolUseBlock):
                used_at[b.id] = i
            elif isinstance(b, ToolResultBlock) and b.tool_use_id in used_at:
                delta[used_at[b.tool_use_id] + 1] += 1
                delta[i + 1] -= 1
    cuts = []
    open_calls = 0
    for i in range(n):
        open_calls += delta[i]
        if i == 0 or open_calls > 0:
            continue
        if messages[i].role == "assistant" or _is_turn_start(messages[i]):
            cuts.append(i)
    return cuts


def choose_cut(
    messages: Sequence[Message],
    keep_last_turns: int,
    keep_tokens: int,
    counter: TokenCounter | None = None,
) -> int:
    """Where to cut: everything before the returned index is summarised.

    Prefers the start of the `keep_last_turns`-th last user turn. When that keeps more than
    `keep_tokens` verbatim (or the session is one long turn), cuts between steps of a turn
    instead: at the earliest valid point whose tail fits in `keep_tokens`, or, if even the
    last step is larger, just before the last step. `keep_last_turns=0` summarises everything.
    """
    if keep_last_turns < 0 or keep_tokens < 0:
        raise ValueError("keep_last_turns and keep_tokens must be >= 0")
    n = len(messages)
    if n == 0:
        raise CompactionError("Nothing to compact: the conversation is empty.")
    if keep_last_turns == 0:
        return n
    counter = counter or TokenCounter()
    cuts = valid_cuts(messages)
    if not cuts:
        raise CompactionError("Nothing to compact: the conversation has no point to cut at.")
    tail = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        tail[i] = tail[i + 1] + counter.raw_message(messages[i])
    keep_raw = keep_tokens / counter.ratio
    turns = [i for i, m in enumerate(messages) if _is_turn_start(m)]
    preferred = turns[-keep_last_turns] if len(turns) >= keep_last_turns else 0
    if preferred > 0 and preferred in cuts and tail[preferred] <= keep_raw:
        return preferred
    later = [c for c in cuts if c >= preferred]
    if not later:
        raise CompactionError("Nothing to compact: the conversation has no point to cut at.")
    for c in later:
        if tail[c] <= keep_raw:
            return c
    return later[-1]


def _clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, keeping its head and tail."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return f"[{len(text):,} characters omitted]"
    head = limit * 2 // 3
    tail = limit - head
    omitted = len(text) - head - tail
    return (
        f"{text[:head]}\n[... {omitted:,} characters omitted ...]\n{text[-tail:] if tail else ''}"
    )


def render_transcript(
    messages: Sequence[Message], result_chars: int = 4000, text_chars: int = 16000
) -> str:
    """The conversation as plain text for the summariser; thinking is left out."""
    names: dict[str, str] = {}
    lines: list[str] = []
    for message in messages:
        for b in message.content:
            if isinstance(b, TextBlock):
                lines.append(f"[{message.role}]\n{_clip(b.text, text_chars)}")
            elif isinstance(b, ToolUseBlock):
                names[b.id] = b.name
                args = json.dumps(b.input, ensure_ascii=False)
                lines.append(f"[assistant called {b.name}] {_clip(args, text_chars // 4)}")
            elif isinstance(b, ToolResultBlock):
                name = names.get(b.tool_use_id, "tool")
                status = " (error)" if b.is_error else ""
                lines.append(f"[{name} result{status}]\n{_clip(b.content, result_chars)}")
            elif isinstance(b, ThinkingBlock):
                continue
    return "\n\n".join(lines)


def build_summary_request(
    messages: Sequence[Message],
    *,
    budget_tokens: int,
    instructions: str | None = None,
    max_tokens: int = 8192,
    counter: TokenCounter | None = None,
) -> ModelRequest:
    """The summarisation request, its transcript shortened until it fits in `budget_tokens`."""
    counter = counter or TokenCounter()
    extra = f"\n\nAlso: {instructions.strip()}" if instructions and instructions.strip() else ""
    prompt = ""
    for result_chars, text_chars in _SHORTENINGS:
        transcript = render_transcript(messages, result_chars, text_chars)
        prompt = f"<transcript>\n{transcript}\n</transcript>\n\n{SUMMARY_INSTRUCTIONS}{extra}"
        if counter.estimate_text(SUMMARY_SYSTEM + prompt) <= budget_tokens:
            break
    else:
        # Still too long: keep the newest part of the transcript (the start of the task is in
        # the first user message, which the earlier summary or this cut-off notice points to).
        keep_chars = int(budget_tokens * 3.5 * 0.9 / max(counter.ratio, 1e-6))
        body = _clip(transcript, keep_chars) if keep_chars > 0 else ""
        prompt = f"<transcript>\n{body}\n</transcript>\n\n{SUMMARY_INSTRUCTIONS}{extra}"
    return ModelRequest(
        system=SUMMARY_SYSTEM,
        messages=[Message.user(prompt)],
        tools=[],
        max_tokens=max_tokens,
        thinking_budget=None,
    )


async def compact(
    provider: Any,
    messages: Sequence[Message],
    *,
    keep_last_turns: int = 2,
    keep_tokens: int | None = None,
    instructions: str | None = None,
    counter: TokenCounter | None = None,
    max_summary_tokens: int = 8192,
) -> CompactionResult:
    """Summarise the older part of `messages` with `provider`'s model.

    `keep_tokens` (default a quarter of the window) bounds what stays verbatim; `instructions`
    adds to the summary prompt (e.g. "focus on the failing test"). Raises CompactionError when
    there is nothing to cut or the model call fails; the conversation is untouched either way.
    """
    counter = counter or TokenCounter()
    window = int(getattr(provider, "context_window", 0) or 0)
    if keep_tokens is None:
        keep_tokens = window // 4 if window else 50_000
    cut = choose_cut(messages, keep_last_turns, keep_tokens, counter)
    head = list(messages[:cut])
    # Leave room for the reply and for the estimate being off.
    budget = max(1000, int(window * 0.9) - max_summary_tokens) if window else 150_000
    request = build_summary_request(
        head,
        budget_tokens=budget,
        instructions=instructions,
        max_tokens=max_summary_tokens,
        counter=counter,
    )
    response = await _final_response(provider, request)
    summary = response.message.text().strip()
    if not summary:
        raise CompactionError(
            f"Compaction failed: the model returned no summary (stop_reason={response.stop_reason})."
        )
    if response.stop_reason == "max_tokens":
        summary += "\n\n[The summary was cut off at its length limit.]"
    after = [summary_message(summary), *messages[cut:]]
    return CompactionResult(
        summary=summary,
        cut_index=cut,
        tokens_before=counter.estimate_messages(messages),
        tokens_after=counter.estimate_messages(after),
        usage=response.usage,
        model=response.model,
    )


async def _final_response(provider: Any, request: ModelRequest) -> ModelResponse:
    final: ModelResponse | None = None
    try:
        async for item in provider.stream(request):
            if isinstance(item, ModelResponse):
                final = item
    except ProviderError as exc:
        raise CompactionError(f"Compaction failed: the summary call failed: {exc}") from exc
    if final is None:
        raise CompactionError("Compaction failed: the summary call ended without a reply.")
    return final


async def compact_or_error(
    provider: Any, messages: Sequence[Message], **kwargs: Any
) -> CompactionResult | Error:
    """`compact`, with a failure returned as an `Error(kind="compaction")` event to log and
    show; the session then goes on uncompacted."""
    try:
        return await compact(provider, messages, **kwargs)
    except CompactionError as exc:
        return Error(message=f"{exc} The session continues uncompacted.", kind="compaction")
