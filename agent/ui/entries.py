"""The transcript's entries: a prompt, a reply, a thought, a tool call, a notice.

Each draws what it is given; none talks to the agent.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Collapsible, Markdown, Static

from agent import events as ev
from agent.describe import decision_text, tool_title
from agent.ui.format import diff_text, edit_diff, one_line, preview

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
        # What the call changed, as a diff with the file's line numbers (edits only).
        self.diff: str | None = None
        self.decision_event: ev.PermissionDecision | None = None
        head = Text()
        head.append("⏺ ", style="bold cyan")
        head.append(one_line(tool_title(name, args), 200), style="bold")
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
        """Show who allowed or denied the call (quiet for what goes without saying: reads, and
        edits the permission mode allows)."""
        self.decision_event = event
        text = decision_text(event.decision, event.source, event.reason)
        if text is None:
            return
        style = "green" if event.decision == "allow" else "red"
        self._decision.update(Text(f"  {text}", style=style))
        self._decision.display = True

    def set_result(self, content: str, is_error: bool, diff: str | None = None) -> None:
        self.result, self.is_error = content, is_error
        self.diff = diff or self.diff
        self._render_result()

    def _render_result(self) -> None:
        assert self.result is not None
        if self._is_edit() and not self.is_error and not self.expanded:
            # A successful edit is best read as its diff (the tool's echo is one click away),
            # numbered as in the file when the result carries it (older logs do not).
            whole = diff_text(self.diff) if self.diff else edit_diff(self.args)
            lines = [
                line
                for line in whole.split("\n")
                if not line.plain.startswith(("--- a/", "+++ b/"))
            ]  # the head names it
            text = Text("\n").join(lines[:EDIT_PREVIEW_LINES])
            if len(lines) > EDIT_PREVIEW_LINES:
                text.append(
                    f"\n… +{len(lines) - EDIT_PREVIEW_LINES} lines (click to expand)", style="dim"
                )
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
        return self.tool_name == "str_replace_based_edit_tool" and self.args.get("command") in (
            "str_replace",
            "create",
            "insert",
        )

    def on_click(self) -> None:
        if self.result is not None:
            self.expanded = not self.expanded
            self._render_result()


class Notice(Static):
    """A one-line note: checkpoints, context edits, compactions, errors, command output."""

    def __init__(self, text: str | Text, kind: str = "notice") -> None:
        super().__init__(text if isinstance(text, Text) else Text(text), classes=kind)
