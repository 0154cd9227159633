"""The scrolling transcript: one widget per prompt, reply, thought, tool call and notice.

The app hands it events (`show`) as they arrive, or a whole conversation (`load_messages`) on
resume and after a rewind. It never talks to the agent.
"""

from __future__ import annotations

import weakref
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Collapsible, Static

from agent import events as ev
from agent.ui.entries import AssistantEntry, Notice, ThinkingEntry, ToolEntry, UserEntry
from agent.ui.format import one_line

_SUMMARY_HEAD = "This session was compacted"


class Transcript(VerticalScroll):
    """Everything shown for the session, newest at the bottom, kept scrolled there."""

    def __init__(
        self, *, live_refresh_s: float = 0.05, max_entries: int = 600, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # Streamed text is redrawn at most this often: redrawing on every delta costs
        # O(length) each time, so O(length^2) over a long reply (see agent/ui/RESULTS.md).
        self.live_refresh_s = live_refresh_s
        # A session of hours makes thousands of entries; Textual slows down with the number of
        # widgets, so the oldest are dropped from the screen (the session keeps them all).
        self.max_entries = max_entries
        self._reply: AssistantEntry | None = None
        self._thinking: ThinkingEntry | None = None
        self._tools: dict[str, ToolEntry] = {}
        self._live_timer = None
        self._dropped: weakref.WeakSet = weakref.WeakSet()

    def on_mount(self) -> None:
        self.anchor()
        if self.live_refresh_s > 0:
            self._live_timer = self.set_interval(self.live_refresh_s, self._show_live, pause=True)

    def add(self, widget) -> None:
        self.mount(widget)
        self.anchor()
        # Removal completes later: widgets already on their way out are not counted twice.
        kept = [w for w in self.children if w not in self._dropped]
        excess = len(kept) - self.max_entries
        if excess > 0:
            dropped = kept[:excess]
            self._dropped.update(dropped)
            self._tools = {k: t for k, t in self._tools.items() if t not in self._dropped}
            self.remove_children(dropped)

    def _streamed(self, entry) -> None:
        """`entry` got a delta: draw it now or at the next tick."""
        if self._live_timer is None:
            entry.show_live()
        else:
            self._live_timer.resume()

    def _show_live(self) -> None:
        live = [e for e in (self._reply, self._thinking) if e is not None]
        for entry in live:
            entry.show_live()
        if not live and self._live_timer is not None:
            self._live_timer.pause()

    def notice(self, text: str | Text, kind: str = "notice") -> Notice:
        note = Notice(text, kind)
        self.add(note)
        return note

    def clear(self) -> None:
        """Forget what is on screen (the session is untouched)."""
        self.remove_children()
        self._reply = self._thinking = None
        self._tools.clear()

    def tool(self, tool_id: str) -> ToolEntry | None:
        return self._tools.get(tool_id)

    # -- live events ------------------------------------------------------------------------

    def show(self, event: ev.Event) -> None:
        """Render one event from `Agent.stream`."""
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def _on_user(self, event: ev.UserMessage) -> None:
        self.add(UserEntry(event.text))

    def _on_text_delta(self, event: ev.TextDelta) -> None:
        if self._reply is None:
            self._reply = AssistantEntry()
            self.add(self._reply)
        self._reply.append(event.text)
        self._streamed(self._reply)

    def _on_thinking_delta(self, event: ev.ThinkingDelta) -> None:
        if self._thinking is None:
            self._thinking = ThinkingEntry()
            self.add(self._thinking)
        self._thinking.append(event.text)
        self._streamed(self._thinking)

    def _on_assistant(self, event: ev.AssistantMessage) -> None:
        self._finish_message(event.message.model_dump())

    def _finish_message(self, message: dict[str, Any]) -> None:
        thinking = "".join(
            b.get("thinking", "") for b in message["content"] if b["type"] == "thinking"
        )
        text = "".join(b["text"] for b in message["content"] if b["type"] == "text")
        if thinking:
            if self._thinking is None:
                self._thinking = ThinkingEntry(thinking, collapsed=True)
                self.add(self._thinking)
            self._thinking.finish(thinking)
        if text.strip():
            if self._reply is None:
                self._reply = AssistantEntry()
                self.add(self._reply)
            self._reply.finish(text)
        elif self._reply is not None:
            self._reply.remove()
        self._reply = self._thinking = None

    def _on_tool_call(self, event: ev.ToolCall) -> None:
        entry = ToolEntry(event.id, event.name, event.input)
        self._tools[event.id] = entry
        self.add(entry)

    def _on_permission(self, event: ev.PermissionDecision) -> None:
        if (entry := self._tools.get(event.tool_use_id)) is not None:
            entry.decision(event)

    def _on_tool_result(self, event: ev.ToolResult) -> None:
        if (entry := self._tools.get(event.tool_use_id)) is not None:
            entry.set_result(event.content, event.is_error, event.diff)

    def _on_retry(self, event: ev.Retry) -> None:
        # What streamed before a retry is void: the retried call streams it again.
        for widget in (self._reply, self._thinking):
            if widget is not None:
                widget.remove()
        self._reply = self._thinking = None
        self.notice(
            f"retrying (attempt {event.attempt}) in {event.delay_s:.0f} s: "
            f"{one_line(event.reason, 80)}",
            "dim-notice",
        )

    def _on_error(self, event: ev.Error) -> None:
        self.notice(f"error ({event.kind}): {event.message}", "error")

    def _on_checkpoint(self, event: ev.Checkpoint) -> None:
        where = "" if event.reason == "turn_start" else f" · {one_line(event.label, 60)}"
        note = Notice(f"─ checkpoint {event.id} · turn {event.turn}{where}", "checkpoint")
        # A snapshot before a tool runs is logged after its call: show it above the call.
        pending = [t for t in self._tools.values() if t.result is None]
        if event.reason == "before_tool" and pending:
            self.mount(note, before=pending[-1])
        else:
            self.add(note)

    def _on_context_edit(self, event: ev.ContextEdit) -> None:
        self.notice(
            f"context: cleared {event.cleared_tool_uses} old tool result(s), "
            f"~{event.cleared_input_tokens} tokens ({event.source})",
            "dim-notice",
        )

    def _on_compaction(self, event: ev.Compaction) -> None:
        self.notice(
            f"conversation compacted ({event.trigger}): {event.tokens_before} → "
            f"{event.tokens_after} tokens",
            "notice",
        )
        self.add(
            Collapsible(
                Static(Text(event.summary)), title="summary", collapsed=True, classes="thinking"
            )
        )

    def _on_turn_end(self, event: ev.TurnEnd) -> None:
        if event.reason != "end_turn":
            kind = "error" if event.reason in ("error", "refusal") else "notice"
            self.notice(f"turn ended: {event.reason}", kind)

    # -- a whole conversation ---------------------------------------------------------------

    def load_messages(
        self, messages: list[dict[str, Any]], events: list[ev.Event] | None = None
    ) -> None:
        """Rebuild from `Agent.messages()` (resume, conversation rewind); the session's
        `events`, when given, bring back what the messages do not hold: each call's permission
        decision and the diff of each edit."""
        self.clear()
        decisions: dict[str, ev.PermissionDecision] = {}
        diffs: dict[str, str] = {}
        for event in events or ():
            if isinstance(event, ev.PermissionDecision):
                decisions[event.tool_use_id] = event
            elif isinstance(event, ev.ToolResult) and event.diff:
                diffs[event.tool_use_id] = event.diff
        results: dict[str, dict[str, Any]] = {}
        for message in messages:
            for block in message["content"]:
                if block["type"] == "tool_result":
                    results[block["tool_use_id"]] = block
        for message in messages:
            if message["role"] == "user":
                for block in message["content"]:
                    if block["type"] != "text":
                        continue
                    if block["text"].startswith(_SUMMARY_HEAD):
                        self.notice("earlier conversation compacted (summary below)")
                        self.add(
                            Collapsible(
                                Static(Text(block["text"])),
                                title="summary",
                                collapsed=True,
                                classes="thinking",
                            )
                        )
                    else:
                        self.add(UserEntry(block["text"]))
                continue
            self._finish_message(message)
            for block in message["content"]:
                if block["type"] != "tool_use":
                    continue
                entry = ToolEntry(block["id"], block["name"], block.get("input", {}))
                self._tools[block["id"]] = entry
                self.add(entry)
                if (decision := decisions.get(block["id"])) is not None:
                    entry.decision(decision)
                if (result := results.get(block["id"])) is not None:
                    entry.set_result(
                        result["content"], result.get("is_error", False), diffs.get(block["id"])
                    )
