"""Context editing: old tool results cleared from what the model sees, never from the log.

With Claude the server does it: `anthropic_context_management` builds the request's
`context_management` body (sent with the `context-management-2025-06-27` beta) and
`context_edit_event` records what the server reports it cleared.

With every other provider `ClientContextEditor` applies the same policy to the view that is
sent. Clearing goes in steps so that prompt caching survives: nothing changes until the
estimated input passes the trigger, then the oldest results are cleared until at least
`clear_at_least_tokens` are freed, and the set of cleared ids only ever grows, so between two
triggers the sent prefix is byte-for-byte the same. Each step is logged as a
`ContextEdit(source="client")` event carrying the ids, and `cleared_ids_from_events` replays
them, so a resumed session sends exactly the view it sent before the restart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.context.settings import ContextSettings
from agent.context.tokens import ContextBreakdown, TokenCounter, count_request
from agent.errors import ProviderError
from agent.events import ContextEdit
from agent.messages import Message, ToolResultBlock, ToolUseBlock

CLEAR_TOOL_USES = "clear_tool_uses_20250919"
CLEAR_THINKING = "clear_thinking_20251015"
# What a cleared call's input becomes when `clear_tool_inputs` is on (inputs must stay objects).
CLEARED_INPUT = {"cleared": "Input cleared to save context."}


# ---------------------------------------------------------------------------------------------
# Claude: the server edits


def anthropic_context_management(
    settings: ContextSettings, thinking: bool, context_window: int | None = None
) -> dict[str, Any] | None:
    """The Messages API `context_management` body for `settings`, or None when editing is off.

    Send it with the `CONTEXT_MANAGEMENT_BETA` header. With thinking on, the thinking edit must
    come first in the list (the API rejects it elsewhere).
    """
    if not settings.enabled:
        return None
    edits: list[dict[str, Any]] = []
    if thinking:
        keep = settings.clear_thinking_keep_turns
        edits.append(
            {
                "type": CLEAR_THINKING,
                "keep": "all" if keep == "all" else {"type": "thinking_turns", "value": keep},
            }
        )
    edits.append(
        {
            "type": CLEAR_TOOL_USES,
            "trigger": {"type": "input_tokens", "value": settings.trigger_for(context_window)},
            "keep": {"type": "tool_uses", "value": settings.keep_tool_uses},
            "clear_at_least": {"type": "input_tokens", "value": settings.clear_at_least_tokens},
            "exclude_tools": list(settings.exclude_tools),
            "clear_tool_inputs": settings.clear_tool_inputs,
        }
    )
    return {"edits": edits}


def context_edit_event(applied_edits: Sequence[dict[str, Any]]) -> ContextEdit:
    """A `ContextEdit(source="server")` from a response's `context_management.applied_edits`."""
    uses = 0
    tokens = 0
    for edit in applied_edits:
        if not isinstance(edit, dict):
            raise TypeError(f"applied edit must be an object, got {type(edit).__name__}")
        uses += int(edit.get("cleared_tool_uses") or 0)
        tokens += int(edit.get("cleared_input_tokens") or 0)
    return ContextEdit(
        source="server",
        applied_edits=[dict(e) for e in applied_edits],
        cleared_tool_uses=uses,
        cleared_input_tokens=tokens,
    )


# ---------------------------------------------------------------------------------------------
# Every other provider: we edit the view


def client_edit_event(cleared_ids: Sequence[str], freed_tokens: int) -> ContextEdit:
    """The event that records one client-side clearing step (and replays it on resume)."""
    ids = list(cleared_ids)
    return ContextEdit(
        source="client",
        applied_edits=[
            {
                "type": CLEAR_TOOL_USES,
                "cleared_tool_use_ids": ids,
                "cleared_tool_uses": len(ids),
                "cleared_input_tokens": freed_tokens,
            }
        ],
        cleared_tool_uses=len(ids),
        cleared_input_tokens=freed_tokens,
    )


def cleared_ids_from_events(events: Iterable[Any]) -> set[str]:
    """The tool_use ids cleared so far, from the client `ContextEdit` events of a log.

    Pass the events in log order; other event types are skipped. Ids of calls that a rewind or
    a compaction removed may stay in the set: they match nothing, so they change nothing.
    """
    cleared: set[str] = set()
    for event in events:
        if isinstance(event, ContextEdit) and event.source == "client":
            for edit in event.applied_edits:
                if edit.get("type") == CLEAR_TOOL_USES:
                    cleared.update(edit.get("cleared_tool_use_ids") or [])
    return cleared


def describe_call(use: ToolUseBlock, limit: int = 80) -> str:
    """A short human description of a call: bash `pytest -x`, view `src/app.py`, ..."""
    args = use.input or {}
    detail = ""
    if use.name == "bash":
        detail = str(args.get("command") or ("restart" if args.get("restart") else ""))
    elif use.name == "str_replace_based_edit_tool":
        detail = " ".join(str(args[k]) for k in ("command", "path") if args.get(k))
    elif use.name in ("grep", "glob"):
        detail = " ".join(str(args[k]) for k in ("pattern", "path") if args.get(k))
    else:
        # First short string argument: good enough to tell calls apart.
        detail = next((v for v in args.values() if isinstance(v, str) and v), "")
    detail = " ".join(detail.split())
    if len(detail) > limit:
        detail = detail[: limit - 3] + "..."
    return f"{use.name} `{detail}`" if detail else use.name


def placeholder(use: ToolUseBlock | None, tokens: int) -> str:
    """What a cleared tool result is replaced by."""
    what = f"{describe_call(use)} output" if use is not None else "tool output"
    return (
        f"[Tool result cleared to save context: {what}, {tokens:,} tokens. "
        "Call the tool again if you need it.]"
    )


@dataclass
class EditResult:
    """What `ClientContextEditor.apply` produced."""

    # The messages to send: cleared results (and inputs) replaced; unchanged messages are the
    # caller's own objects, changed ones are copies (the caller's list is never modified).
    messages: list[Message]
    # Ids cleared by this call, oldest first (empty when nothing changed).
    newly_cleared: list[str] = field(default_factory=list)
    # Estimated tokens freed by this call's clearing.
    freed_tokens: int = 0
    # Estimated input tokens of the returned view (by the `estimate` given to `apply`).
    tokens: int = 0

    def event(self) -> ContextEdit | None:
        """The ContextEdit to log for this step, or None when nothing was cleared."""
        if not self.newly_cleared:
            return None
        return client_edit_event(self.newly_cleared, self.freed_tokens)


class ClientContextEditor:
    """Applies `ContextSettings` to the messages sent to a provider without server editing."""

    def __init__(
        self,
        settings: ContextSettings | None = None,
        *,
        context_window: int | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        self.settings = settings or ContextSettings()
        self.trigger = self.settings.trigger_for(context_window)
        self.counter = counter or TokenCounter()

    def apply(
        self,
        messages: Sequence[Message],
        cleared: Iterable[str],
        estimate: Callable[[list[Message]], int] | None = None,
    ) -> EditResult:
        """The view of `messages` to send, clearing one more step if the trigger is passed.

        `cleared` is the set cleared so far (see `cleared_ids_from_events`); add the result's
        `newly_cleared` to it. `estimate(view)` gives the input tokens of a request sending
        `view` (system prompt and tools included); by default the counter's estimate of the
        messages alone.
        """
        estimate = estimate or self.counter.estimate_messages
        if not self.settings.enabled:
            # Off means the model sees the conversation as it is, earlier clearing included.
            return EditResult(list(messages), tokens=estimate(list(messages)))
        cleared = set(cleared)
        uses = _tool_uses(messages)
        results = _result_ids(messages)
        # Placeholder sizes use the raw (uncalibrated) count: calibration drifts, and the text
        # the model sees must not change once sent or the cached prefix is lost.
        sizes = {tid: self.counter.raw_text(b.content) for tid, b in results.items()}
        view = self._view(messages, cleared, uses, sizes)
        tokens = estimate(view)
        if tokens <= self.trigger:
            return EditResult(view, tokens=tokens)

        excluded = set(self.settings.exclude_tools)
        answered = [tid for tid in uses if tid in results]
        keep = self.settings.keep_tool_uses
        protected = set(answered[len(answered) - keep :]) if keep else set()
        # Free at least `clear_at_least`, and enough to get back under the trigger, so that the
        # following calls send an unchanged prefix instead of clearing again at once.
        minimum = self.settings.clear_at_least_tokens
        need = max(minimum, tokens - self.trigger)
        chosen: list[str] = []
        freed = 0
        for tid in answered:
            if chosen and self.counter.scale(freed) >= need:
                break
            if tid in cleared or tid in protected or uses[tid].name in excluded:
                continue
            gain = self._gain(uses[tid], results[tid], sizes[tid])
            if gain <= 0:
                continue
            chosen.append(tid)
            freed += gain
        # Like the server: a step that cannot free `clear_at_least` is not worth a cache miss.
        if not chosen or self.counter.scale(freed) < minimum:
            return EditResult(view, tokens=tokens)
        cleared.update(chosen)
        view = self._view(messages, cleared, uses, sizes)
        return EditResult(view, chosen, self.counter.scale(freed), estimate(view))

    def _gain(self, use: ToolUseBlock, result: ToolResultBlock, size: int) -> int:
        """Raw tokens freed by clearing this call."""
        count = self.counter.raw_text
        gain = size - count(placeholder(use, size))
        if self.settings.clear_tool_inputs:
            gain += count(_dumps(use.input)) - count(_dumps(CLEARED_INPUT))
        return gain

    def _view(
        self,
        messages: Sequence[Message],
        cleared: set[str],
        uses: dict[str, ToolUseBlock],
        sizes: dict[str, int],
    ) -> list[Message]:
        out: list[Message] = []
        for message in messages:
            hit = any(
                (isinstance(b, ToolResultBlock) and b.tool_use_id in cleared)
                or (
                    self.settings.clear_tool_inputs
                    and isinstance(b, ToolUseBlock)
                    and b.id in cleared
                )
                for b in message.content
            )
            if not hit:
                out.append(message)
                continue
            blocks = []
            for b in message.content:
                if isinstance(b, ToolResultBlock) and b.tool_use_id in cleared:
                    text = placeholder(uses.get(b.tool_use_id), sizes.get(b.tool_use_id, 0))
                    b = b.model_copy(update={"content": text})
                elif (
                    isinstance(b, ToolUseBlock)
                    and b.id in cleared
                    and self.settings.clear_tool_inputs
                ):
                    b = b.model_copy(update={"input": dict(CLEARED_INPUT), "input_error": None})
                blocks.append(b)
            out.append(message.model_copy(update={"content": blocks}))
        return out


def _tool_uses(messages: Sequence[Message]) -> dict[str, ToolUseBlock]:
    """Tool calls by id, in conversation order (dicts keep insertion order)."""
    return {
        b.id: b
        for m in messages
        if m.role == "assistant"
        for b in m.content
        if isinstance(b, ToolUseBlock)
    }


def _result_ids(messages: Sequence[Message]) -> dict[str, ToolResultBlock]:
    return {
        b.tool_use_id: b
        for m in messages
        if m.role == "user"
        for b in m.content
        if isinstance(b, ToolResultBlock)
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# ---------------------------------------------------------------------------------------------
# What the loop calls: one object per session


@dataclass
class Prepared:
    """A request made ready to send, and what the loop should do about it."""

    request: Any  # agent.providers.base.ModelRequest
    # A client clearing step to log (None when nothing was cleared by this call).
    event: ContextEdit | None
    # Input tokens of `request`: counted by the provider when `exact`, else estimated.
    tokens: int
    exact: bool
    # Automatic compaction is due before (or instead of) sending this request.
    compact: bool


class ContextPolicy:
    """Context editing and token accounting for one session, whatever the provider.

    Per model call: `prepare(request)` before sending, `observe(sent, response)` after. On
    resume call `restore(events)` first so the same view is sent as before the restart.
    With Anthropic (`server_side`) the server clears; with the others `ClientContextEditor`.
    """

    def __init__(
        self,
        settings: ContextSettings | None,
        provider: Any,
        *,
        counter: TokenCounter | None = None,
        server_side: bool | None = None,
    ) -> None:
        self.settings = settings or ContextSettings()
        self.provider = provider
        self.window = int(getattr(provider, "context_window", 0) or 0)
        self.counter = counter or TokenCounter()
        self.server_side = (
            getattr(provider, "name", "") == "anthropic" if server_side is None else server_side
        )
        self.editor = ClientContextEditor(
            self.settings, context_window=self.window, counter=self.counter
        )
        self.cleared: set[str] = set()

    def restore(self, events: Iterable[Any]) -> None:
        """Take the cleared set from a replayed log (client ContextEdit events)."""
        self.cleared = cleared_ids_from_events(events)

    async def prepare(self, request: Any, *, count: bool = True) -> Prepared:
        """Apply the policy to `request` (which holds the full conversation).

        Returns a copy to send: the edited view for client-side providers, the
        `context_management` body for Anthropic. When the estimate says compaction is due and
        `count` is set, the provider's token count (if it has one) confirms it first, so an
        over-estimate does not cost a needless summary call.
        """

        def estimate(view: list[Message]) -> int:
            return self.counter.estimate_request(request.system, request.tools, view)

        event = None
        update: dict[str, Any] = {}
        if self.server_side:
            thinking = request.thinking_budget is not None
            update["context_management"] = anthropic_context_management(
                self.settings, thinking, self.window or None
            )
            tokens = estimate(list(request.messages))
        else:
            result = self.editor.apply(request.messages, self.cleared, estimate)
            self.cleared.update(result.newly_cleared)
            event = result.event()
            update["messages"] = result.messages
            tokens = result.tokens
        sent = request.model_copy(update=update)
        exact = False
        due = bool(self.window) and self.settings.should_compact(tokens, self.window)
        if due and count:
            try:
                counted, exact = await count_request(self.provider, sent, self.counter)
            except ProviderError:
                exact = False  # the count is advisory; the estimate stands
            if exact:
                tokens = counted
                due = self.settings.should_compact(tokens, self.window)
        return Prepared(sent, event, tokens, exact, due)

    def observe(self, sent: Any, response: Any) -> ContextEdit | None:
        """Learn from a reply to `sent`: calibrates the counter; returns the server's
        ContextEdit event when Anthropic reports it cleared something."""
        usage = response.usage
        actual = (
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        )
        event = context_edit_event(response.applied_edits) if response.applied_edits else None
        cleared = event.cleared_input_tokens if event else 0
        self.counter.observe(actual, sent.system, sent.tools, sent.messages, cleared_tokens=cleared)
        return event

    def breakdown(self, request: Any, memory_text: str = "") -> ContextBreakdown:
        """Where the window goes for `request` as it would be sent now."""
        messages = request.messages
        if not self.server_side:
            messages = self.editor.apply(messages, self.cleared, lambda v: 0).messages
        return self.counter.breakdown(
            request.system, request.tools, memory_text, messages, self.window or 200_000
        )
