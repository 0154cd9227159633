"""Asking the user before a tool call: the modal, and the approver callback the runtime awaits.

Keys: y allow once, a allow for the rest of the session (a rule added to the session's policy),
n or Esc deny.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from agent.describe import (
    SESSION_ALLOWED,
    approval_reason,
    session_scope,
    tool_question,
    tool_title,
)
from agent.permissions import BASH_TOOLS, split_command
from agent.ui.format import diff_text, edit_diff

_EDIT = "str_replace_based_edit_tool"


def session_rules(name: str, args: dict[str, Any]) -> list[str]:
    """What "allow for this session" adds: this command (each part of a compound one) for
    bash, the whole tool otherwise (as Claude Code's "allow all edits this session")."""
    if name in BASH_TOOLS and isinstance(args.get("command"), str):
        parts = split_command(args["command"])
        return [f"bash({part})" for part in parts] or ["bash"]
    return [name]


class ApprovalScreen(ModalScreen[str]):
    """Shows one tool call; dismisses with "allow", "always" or "deny"."""

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: round $warning; background: $surface; padding: 0 1;
    }
    ApprovalScreen .title { text-style: bold; color: $warning; }
    ApprovalScreen .reason { color: $text-muted; }
    ApprovalScreen VerticalScroll { height: auto; max-height: 16; margin: 1 0; }
    ApprovalScreen Horizontal { height: auto; }
    ApprovalScreen Button { margin-right: 1; min-width: 10; }
    """

    BINDINGS = [
        Binding("y", "choose('allow')", "allow once"),
        Binding("a", "choose('always')", "allow this session"),
        Binding("n", "choose('deny')", "deny"),
        Binding("escape", "choose('deny')", "deny", show=False),
    ]

    def __init__(
        self, name: str, args: dict[str, Any], reason: str, cwd: Path | None = None
    ) -> None:
        super().__init__()
        self.tool_name, self.args, self.reason = name, args, reason
        # The work tree, to show an edit where it lands in its file.
        self.cwd = cwd

    def compose(self) -> ComposeResult:
        scope = session_scope(self.tool_name, session_rules(self.tool_name, self.args))
        with Vertical():
            yield Static(Text(tool_question(self.tool_name, self.args)), classes="title")
            with VerticalScroll():
                yield Static(self._body(), id="approval-body")
            yield Static(Text(approval_reason(self.tool_name, self.reason)), classes="reason")
            yield Static(Text(f"a allows {scope} for the rest of this session"), classes="reason")
            # Short labels: all three fit side by side in an 80-column terminal.
            with Horizontal():
                yield Button("Yes (y)", id="allow", variant="success")
                yield Button("This session (a)", id="always")
                yield Button("No (n / esc)", id="deny", variant="error")

    def _body(self) -> Text:
        if self.tool_name == _EDIT and self.args.get("command") != "view":
            return self._edit_body()
        if self.tool_name in BASH_TOOLS:
            return Text("$ " + str(self.args.get("command", "")), style="bold")
        return Text(tool_title(self.tool_name, self.args))

    def _edit_body(self) -> Text:
        if self.cwd is None:
            return edit_diff(self.args)
        from tools.base import ToolContext
        from tools.edit_preview import preview_edit

        preview = preview_edit(self.args, ToolContext(cwd=self.cwd))
        if preview.error:
            text = Text(f"This edit will fail: {preview.error}\n\n", style="yellow")
            text.append_text(edit_diff(self.args))
            return text
        # The title names the file: the diff's own file header would only repeat it.
        return diff_text(
            "\n".join(
                ln
                for ln in preview.lines
                if not ln.startswith(("--- a/", "+++ b/")) or ln.endswith(("lines)", "line)"))
            )
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


def make_approver(app: App, agent, status) -> Any:
    """The approval callback for the runtime: shows the modal and waits for the answer;
    `status` (the status bar) says meanwhile that the agent waits for the user."""

    async def approve(name: str, args: dict[str, Any], reason: str) -> bool:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def done(choice: str | None) -> None:
            if not future.done():
                future.set_result(choice or "deny")

        screen = ApprovalScreen(name, args, reason, agent.runtime().cwd)
        app.push_screen(screen, done)
        status.waiting = True
        try:
            choice = await future
        except asyncio.CancelledError:
            # The turn was interrupted while we asked: take the question away.
            if screen.is_current:
                screen.dismiss("deny")
            raise
        finally:
            status.waiting = False
        if choice == "always":
            for rule in session_rules(name, args):
                await agent.aadd_rule(rule)
            if agent.runtime().policy.check(name, args, False).decision != "allow":
                # The policy never lets a rule cover some calls (a redirection into a file,
                # a protected path): say so rather than let the user expect silence.
                app.notify(
                    f"Allowed this time; calls like this one ({tool_title(name, args)}) "
                    "are always asked.",
                    severity="warning",
                )
                choice = "allow"
        if choice == "always":
            return SESSION_ALLOWED  # a true value: allowed, and the decision says for how long
        return choice == "allow"

    return approve
