"""The scrolling transcript: one widget per prompt, reply, thought, tool call and notice.

The app hands it events (`show`) as they arrive, or a whole conversation (`load_messages`) on
resume and after a rewind. It never talks to the agent.
"""

from __future__ import annotations

import weakref
from typing import Any

from rich.text import Text
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Collapsible, Markdown, Static

from agent import events as ev
from agent.ui.format import edit_diff, key_argument, one_line, preview

_SUMMARY_HEAD = "This session was compacted"
# Diff lines shown for a successful edit before "… +N lines".
EDIT_PREVIEW_LINES = 12


class UserEntry(Static):
    """A prompt the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(Text("> " + text), classes="user")


class AssistantEntry(Vertical):
    """A reply: plain text while it streams, Markdown once the message is complete."""

    def __init__(self) -> None:
        super().__init__(classes="assistant")
        self.text = ""
        self.done = False
        self._live = Static("", classes="live")
        self._markdown: Markdown | None = None

    def compose(self):
        yield self._live

    def append(self, delta: str) -> None:
        self.text += delta

    def show_live(self) -> None:
        """Draw the text streamed so far (called at most `Transcript.live_refresh_s` apart)."""
        if not self.done:
            self._live.update(Text(self.text))

    def finish(self, text: str) -> None:
        """Show the final text as Markdown (streamed text is replaced by the logged one)."""
        self.text, self.done = text, True
        if self.is_mounted:
            self._swap()

    def on_mount(self) -> None:
        # finish() may come before the entry is mounted (history is loaded in one go).
        if self.done:
            self._swap()

    def _swap(self) -> None:
        if self._markdown is None:
            self._live.display = False
            self._markdown = Markdown(self.text)
            self.mount(self._markdown)


class ThinkingEntry(Collapsible):
    """The model's visible reasoning, dimmed; open while it streams, folded when done."""

    def __init__(self, text: str = "", *, collapsed: bool = False) -> None:
        self.text = text
        self._body = Static(Text(text), classes="thinking-body")
        super().__init__(self._body, title="✻ Thinking…", collapsed=collapsed, classes="thinking")

    def append(self, delta: str) -> None:
        self.text += delta

    def show_live(self) -> None:
        self._body.update(Text(self.text))

    def finish(self, text: str) -> None:
        self.text = text or self.text
        self._body.update(Text(self.text))
        self.title = "✻ Thought (click to show)"
        self.collapsed = True


class ToolEntry(Vertical):
    """One tool call: name and key argument, the permission decision, the result (expandable)."""

    DEFAULT_CSS = """
    ToolEntry { height: auto; }
    ToolEntry Horizontal { height: auto; }
    ToolEntry .gutter { width: 5; color: $text-muted; }
    ToolEntry .tool-result { width: 1fr; }
    """

    def __init__(self, tool_id: str, name: str, args: dict[str, Any]) -> None:
        super().__init__(classes="tool")
        self.tool_id, self.tool_name, self.args = tool_id, name, args
        self.result: str | None = None
        self.is_error = False
        self.expanded = False
        head = Text()
        head.append("⏺ ", style="bold cyan")
        head.append(name, style="bold")
        head.append(" " + one_line(key_argument(name, args), 200))
        self._head = Static(head, classes="tool-head")
        self._decision = Static("", classes="tool-decision")
        self._result = Static(Text("running…", style="dim"), classes="tool-result")
        self._decision.display = False

    def compose(self):
        yield self._head
        yield self._decision
        # The result in its own column, so that wrapped lines stay indented under it.
        with Horizontal():
            yield Static("  ⎿", classes="gutter")
            yield self._result

    def decision(self, event: ev.PermissionDecision) -> None:
        """Show who allowed or denied the call (quiet for read-only calls the mode allows)."""
        if event.decision == "allow" and event.source == "mode":
            return
        mark, style = ("✓ allowed", "green") if event.decision == "allow" else ("✗ denied", "red")
        self._decision.update(Text(f"  {mark}: {event.reason} ({event.source})", style=style))
        self._decision.display = True

    def set_result(self, content: str, is_error: bool) -> None:
        self.result, self.is_error = content, is_error
        self._render_result()

    def _render_result(self) -> None:
        assert self.result is not None
        if self._is_edit() and not self.is_error and not self.expanded:
            # A successful edit is best read as its diff (the tool's echo is one click away).
            lines = [line for line in edit_diff(self.args).split("\n")
                     if not line.plain.startswith(("--- a/", "+++ b/"))]  # the head names it
            text = Text("\n").join(lines[:EDIT_PREVIEW_LINES])
            if len(lines) > EDIT_PREVIEW_LINES:
                text.append(f"\n… +{len(lines) - EDIT_PREVIEW_LINES} lines (click to expand)",
                            style="dim")
            self._result.update(text)
            return
        if self.expanded:
            shown, hidden = self.result.rstrip("\n"), 0
        else:
            shown, hidden = preview(self.result)
        text = Text()
        for line in shown.splitlines() or ["(no output)"]:
            text.append(line + "\n", style="red" if self.is_error else "")
        if hidden:
            text.append(f"… +{hidden} lines (click to expand)\n", style="dim")
        text.rstrip()
        self._result.update(text)

    def _is_edit(self) -> bool:
        return (self.tool_name == "str_replace_based_edit_tool"
                and self.args.get("command") in ("str_replace", "create", "insert"))

    def on_click(self) -> None:
        if self.result is not None:
            self.expanded = not self.expanded
            self._render_result()


class Notice(Static):
    """A one-line note: checkpoints, context edits, compactions, errors, command output."""

    def __init__(self, text: str | Text, kind: str = "notice") -> None:
        super().__init__(text if isinstance(text, Text) else Text(text), classes=kind)


class Transcript(VerticalScroll):
    """Everything shown for the session, newest at the bottom, kept scrolled there."""

    def __init__(self, *, live_refresh_s: float = 0.05, max_entries: int = 600,
                 **kwargs: Any) -> None:
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

    def show(self, event: ev._Event) -> None:
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
        thinking = "".join(b.get("thinking", "") for b in message["content"]
                           if b["type"] == "thinking")
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
            entry.set_result(event.content, event.is_error)

    def _on_retry(self, event: ev.Retry) -> None:
        # What streamed before a retry is void: the retried call streams it again.
        for widget in (self._reply, self._thinking):
            if widget is not None:
                widget.remove()
        self._reply = self._thinking = None
        self.notice(f"retrying (attempt {event.attempt}) in {event.delay_s:.0f} s: "
                    f"{one_line(event.reason, 80)}", "dim-notice")

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
        self.notice(f"context: cleared {event.cleared_tool_uses} old tool result(s), "
                    f"~{event.cleared_input_tokens} tokens ({event.source})", "dim-notice")

    def _on_compaction(self, event: ev.Compaction) -> None:
        self.notice(f"conversation compacted ({event.trigger}): {event.tokens_before} → "
                    f"{event.tokens_after} tokens", "notice")
        self.add(Collapsible(Static(Text(event.summary)), title="summary", collapsed=True,
                             classes="thinking"))

    def _on_turn_end(self, event: ev.TurnEnd) -> None:
        if event.reason != "end_turn":
            kind = "error" if event.reason in ("error", "refusal") else "notice"
            self.notice(f"turn ended: {event.reason}", kind)

    # -- a whole conversation ---------------------------------------------------------------

    def load_messages(self, messages: list[dict[str, Any]]) -> None:
        """Rebuild from `Agent.messages()` (resume, conversation rewind)."""
        self.clear()
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
                        self.add(Collapsible(Static(Text(block["text"])), title="summary",
                                             collapsed=True, classes="thinking"))
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
                if (result := results.get(block["id"])) is not None:
                    entry.set_result(result["content"], result.get("is_error", False))
