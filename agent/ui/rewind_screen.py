"""The rewind picker: choose a checkpoint, see what restoring its code would change, then
restore code (c), conversation (v) or both (b); u undoes the last rewind; Esc closes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from agent.describe import checkpoint_label, count
from agent.errors import GodwitError
from agent.ui.format import diff_text, one_line

# What the picker dismisses with: (restore, checkpoint id), ("undo", None) or None.
Choice = tuple[str, str | None] | None


def checkpoint_row(row: dict[str, Any]) -> Text:
    """One line of the list: id, turn, label, and what restoring its code would change."""
    text = Text()
    text.append(row["id"], style="bold")
    text.append(f"  turn {row['turn']}  ")
    reason = "" if row.get("reason") == "turn_start" else "· "
    text.append(reason + one_line(checkpoint_label(row["label"]), 44))
    changes = row.get("restores")
    if changes:
        text.append(f"  ({count(len(changes), 'file')})", style="dim")
    elif changes is not None:
        text.append("  (no change)", style="dim")
    return text


class RewindScreen(ModalScreen[Choice]):
    """Lists `Agent.checkpoints()` (newest last) beside a preview of `Agent.diff(id)`."""

    DEFAULT_CSS = """
    RewindScreen { align: center middle; }
    RewindScreen > Vertical {
        width: 96%; height: 90%; border: round $accent; background: $surface; padding: 0 1;
    }
    RewindScreen .title { text-style: bold; }
    RewindScreen Horizontal { height: 1fr; }
    RewindScreen OptionList { width: 1fr; height: 1fr; }
    RewindScreen VerticalScroll { width: 1fr; height: 1fr; border-left: solid $panel; padding-left: 1; }
    RewindScreen .keys { color: $text-muted; }
    """

    BINDINGS = [
        Binding("c", "choose('code')", "restore code"),
        Binding("v", "choose('conversation')", "restore conversation"),
        Binding("b", "choose('both')", "restore both"),
        Binding("u", "undo", "undo last rewind"),
        Binding("escape", "close", "close", show=False),
    ]

    def __init__(self, rows: list[dict[str, Any]], diff: Callable[[str], dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows
        self._diff = diff
        # One git operation on the checkpoint store at a time: a preview left running in its
        # thread when the highlight moves on must finish before the next one (or a restore)
        # starts, or git finds the store's index locked.
        self._store_lock = threading.Lock()

    def _locked_diff(self, checkpoint: str) -> dict[str, Any]:
        with self._store_lock:
            return self._diff(checkpoint)

    async def _store_idle(self) -> None:
        def wait() -> None:
            with self._store_lock:
                pass

        await asyncio.to_thread(wait)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Rewind to a checkpoint", classes="title")
            with Horizontal():
                yield OptionList(*[Option(checkpoint_row(r), id=r["id"]) for r in self.rows])
                with VerticalScroll():
                    yield Static(
                        Text("No checkpoints yet." if not self.rows else ""), id="rewind-preview"
                    )
            yield Static(
                "↑↓ choose · c code · v conversation · b both · u undo · esc close", classes="keys"
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.rows:
            options.highlighted = len(self.rows) - 1
        options.focus()

    @property
    def selected(self) -> str | None:
        index = self.query_one(OptionList).highlighted
        return self.rows[index]["id"] if index is not None and self.rows else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_id:
            self._preview(event.option_id)

    @work(exclusive=True, group="preview")
    async def _preview(self, checkpoint: str) -> None:
        row = next(r for r in self.rows if r["id"] == checkpoint)
        head = Text()
        head.append(f"checkpoint {checkpoint} · turn {row['turn']}\n", style="bold")
        head.append(f"{one_line(checkpoint_label(row['label']), 200)}\n\n")
        try:
            # git work: off the UI thread.
            data = await asyncio.to_thread(self._locked_diff, checkpoint)
        except GodwitError as exc:
            head.append(f"No code preview: {exc}\n", style="yellow")
        else:
            if data["text"]:
                head.append("Restoring code would change:\n", style="bold")
                head.append(diff_text(data["text"]))
            else:
                head.append("The code is as it was at this checkpoint.\n", style="dim")
        # The picker may have closed while git worked: then there is nothing to update.
        for preview in self.query("#rewind-preview").results(Static):
            preview.update(head)

    async def action_choose(self, restore: str) -> None:
        if self.selected is not None:
            await self._store_idle()
            self.dismiss((restore, self.selected))

    async def action_undo(self) -> None:
        await self._store_idle()
        self.dismiss(("undo", None))

    def action_close(self) -> None:
        self.dismiss(None)
