"""The session picker: this project's sessions, newest first; Enter resumes one, Esc closes.

Opened by /resume in the UI and by `godwit --resume` given no id. It only chooses: the caller
opens the chosen session.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from agent.describe import count
from agent.ui.format import one_line


def session_row(row: dict[str, Any], current: str | None = None) -> Text:
    """One line: when it was last active, its turns, its first prompt."""
    text = Text()
    when = (row.get("last_activity") or "")[:16].replace("T", " ")
    text.append(f"{when:<16}", style="bold")
    text.append(f"  {count(int(row.get('turns') or 0), 'turn'):>9}  ")
    text.append(one_line(row.get("first_prompt") or "(no prompt)", 60))
    if row["id"] == current:
        text.append("  (this session)", style="dim")
    text.append(f"  {row['id']}", style="dim")
    return text


class ResumeScreen(ModalScreen[str | None]):
    """Lists sessions (rows of `list_sessions`); dismisses with the chosen id or None."""

    DEFAULT_CSS = """
    ResumeScreen { align: center middle; }
    ResumeScreen > Vertical {
        width: 96%; height: auto; max-height: 90%; border: round $accent;
        background: $surface; padding: 0 1;
    }
    ResumeScreen .title { text-style: bold; }
    ResumeScreen OptionList { height: auto; max-height: 20; }
    ResumeScreen .keys { color: $text-muted; }
    """

    BINDINGS = [Binding("escape", "close", "close", show=False)]

    def __init__(self, rows: list[dict[str, Any]], current: str | None = None) -> None:
        super().__init__()
        self.rows, self.current = rows, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Resume a session", classes="title")
            if self.rows:
                yield OptionList(
                    *[Option(session_row(r, self.current), id=r["id"]) for r in self.rows]
                )
            else:
                yield Static(Text("No earlier sessions in this project.", style="dim"))
            yield Static("↑↓ choose · enter resume · esc close", classes="keys")

    def on_mount(self) -> None:
        for options in self.query(OptionList).results(OptionList):
            options.highlighted = 0
            options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_id)

    def action_close(self) -> None:
        self.dismiss(None)


def run_picker(rows: list[dict[str, Any]]) -> str | None:
    """Show the picker full screen by itself (`godwit --resume` without an id)."""
    from textual.app import App

    class _Picker(App[str | None]):
        def on_mount(self) -> None:
            self.push_screen(ResumeScreen(rows), self.exit)

    return _Picker().run()
