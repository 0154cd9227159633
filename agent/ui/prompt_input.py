"""The input box: Enter sends, Shift+Enter or Ctrl+J starts a new line."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

# Ctrl+J is what most terminals send for Shift+Enter unless they speak the kitty protocol.
NEWLINE_KEYS = ("shift+enter", "ctrl+j")


class PromptInput(TextArea):
    """A multi-line TextArea that posts `Submitted` on Enter; the app clears it."""

    DEFAULT_CSS = """
    PromptInput { height: auto; max-height: 10; min-height: 3; border: round $primary; }
    PromptInput:focus { border: round $accent; }
    """

    class Submitted(Message):
        """The user pressed Enter: `text` is what they typed."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(
            soft_wrap=True, show_line_numbers=False, tab_behavior="focus", compact=False, **kwargs
        )
        self.sent: list[str] = []
        # Position while browsing the history with up/down; len(history) = the draft.
        self._recall = 0
        self._draft = ""

    def remember(self, text: str) -> None:
        """Add a sent prompt to the history that up/down walk through."""
        if text and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._recall = len(self.sent)

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self._recall > 0:
            if self._recall == len(self.sent):
                self._draft = self.text
            self._recall -= 1
            self._show(self.sent[self._recall])
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if not select and self.cursor_location[0] == last_row and self._recall < len(self.sent):
            self._recall += 1
            self._show(self.sent[self._recall] if self._recall < len(self.sent) else self._draft)
            return
        super().action_cursor_down(select)

    def _show(self, text: str) -> None:
        self.text = text
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                # The app clears the box when it takes the text (not while a prompt runs).
                self.post_message(self.Submitted(self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)
