"""GodwitApp: the transcript, the input box and the status bar around one `Agent`.

The agent reaches the UI only through messages: a worker iterates `Agent.stream(prompt)` on the
app's event loop and posts each event as an `AgentEvent`; the handlers update the widgets. State
goes down as attributes (the status bar's reactives, the transcript's entries).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Static

from agent import events as ev
from agent.errors import GodwitError
from agent.ui import session_ops, slash_commands
from agent.ui.approval import make_approver
from agent.ui.format import one_line
from agent.ui.messages import AgentEvent, TurnDone
from agent.ui.prompt_input import PromptInput
from agent.ui.status import StatusBar
from agent.ui.transcript import Transcript

# Two presses of Esc (rewind) or Ctrl+C (quit) within this many seconds count as a double.
DOUBLE_PRESS_S = 0.8
QUIT_PRESS_S = 2.0
MODES = ("default", "acceptEdits", "plan")


class GodwitApp(App[int]):
    """The interactive session. Build it with `agent.ui.make_app`."""

    TITLE = "godwit"
    CSS = """
    Screen { layout: vertical; }
    Transcript { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    Transcript > * { height: auto; }
    Transcript .user { margin-top: 1; text-style: bold; color: $text-primary; }
    Transcript .assistant { margin-top: 1; }
    Transcript Markdown { margin: 0; padding: 0; }
    Transcript Markdown > *:last-child { margin-bottom: 0; }
    Transcript .tool { margin-top: 1; }
    Transcript .tool-decision { color: $text-muted; }
    Transcript .checkpoint { color: $text-disabled; margin-top: 1; }
    Transcript .notice { margin-top: 1; color: $text-accent; }
    Transcript .dim-notice { color: $text-muted; }
    Transcript .error { margin-top: 1; color: $text-error; text-style: bold; }
    Transcript .thinking { color: $text-muted; border: none; padding: 0; margin-top: 1; }
    Transcript .welcome { color: $text-muted; }
    #queued { height: auto; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("ctrl+c", "interrupt", "interrupt / quit", priority=True, show=False),
        Binding("ctrl+d", "quit_if_empty", "quit", priority=True, show=False),
        Binding("escape", "escape", "interrupt / rewind", show=False),
        Binding("shift+tab", "cycle_mode", "permission mode", priority=True, show=False),
    ]

    busy: reactive[bool] = reactive(False)

    def __init__(self, agent, first_prompt: str | None = None) -> None:
        super().__init__()
        self.agent = agent
        self.first_prompt = first_prompt
        self._last_escape = 0.0
        self._last_ctrl_c = 0.0
        # Set while a command that can be stopped runs (/compact): Esc / Ctrl+C call it.
        self.interrupt_command: Callable[[], Any] | None = None
        # Prompts sent while the agent works: each goes when the turn before it ends.
        self.queued: list[str] = []

    # -- layout and start ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Transcript(id="transcript")
        yield Static("", id="queued")
        yield PromptInput(id="prompt", placeholder="Ask Godwit… (/help for commands)")
        yield StatusBar(id="status")

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def prompt_input(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def on_mount(self) -> None:
        self.query_one("#queued").display = False
        self._attach()
        self.prompt_input.focus()
        if self.first_prompt:
            self.submit(self.first_prompt)

    def _attach(self) -> None:
        """Show the agent's session (at start, and after /clear or /resume switched it)."""
        rt = self.agent.runtime()
        self.agent.set_approver(make_approver(self, self.agent, self.status))
        # Every event of the session reaches the widgets through this one subscription:
        # prompts, rewinds, compactions and mode changes alike.
        self._unsubscribe = self.agent.subscribe(lambda event: self.post_message(AgentEvent(event)))
        status = self.status
        # The provider knows the model actually used (a scripted or injected one, say).
        status.model = getattr(rt.provider, "model", None) or rt.settings.model
        status.session, status.mode = rt.id, rt.policy.mode
        self._refresh_totals()
        self.refresh_context()
        self.transcript.notice(Text(f"✻ godwit · {rt.cwd.name} · /help for commands"), "welcome")
        messages = self.agent.messages()
        if messages:
            self.transcript.load_messages(messages, self.agent.events)
            self.transcript.notice(f"resumed session {rt.id}")
        for warning in rt.session.warnings:
            self.transcript.notice(f"warning: {warning}", "error")

    # -- sending --------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    def _on_submitted(self, message: PromptInput.Submitted) -> None:
        if self.submit(message.text):
            self.prompt_input.remember(message.text.strip())
            self.prompt_input.clear()

    def submit(self, text: str) -> bool:
        """Run a slash command or send a prompt; False when it was refused (a prompt while
        another runs), and then the text stays in the input box."""
        text = text.strip()
        if not text:
            return False
        if text.startswith("/"):
            command, name, arg = slash_commands.parse(text)
            if command is None:
                self.transcript.notice(f"Unknown command /{name}; /help lists them.", "error")
            elif command.needs_idle and self.busy:
                self.transcript.notice(f"/{name} waits until the prompt finishes.", "error")
                return False
            else:
                self._run_command(command, arg)
            return True
        if self.busy:
            self.queued.append(text)
            self._show_queue()
            return True
        self.busy = True
        self._run_turn(text)
        return True

    def _show_queue(self) -> None:
        queued = self.query_one("#queued", Static)
        queued.display = bool(self.queued)
        text = Text()
        for prompt in self.queued:
            text.append("queued: ", style="bold")
            text.append(one_line(prompt, 200) + "\n")
        text.append("(sent when the agent finishes; esc takes them back)", style="italic")
        queued.update(text)

    def _take_back_queue(self) -> None:
        """Esc while working: the queued prompts go back into the input box, unsent."""
        if not self.queued:
            return
        drafts = [self.prompt_input.text] if self.prompt_input.text.strip() else []
        self.prompt_input.text = "\n".join(drafts + self.queued)
        self.prompt_input.move_cursor(self.prompt_input.document.end)
        self.queued.clear()
        self._show_queue()

    @work(group="command")
    async def _run_command(self, command: slash_commands.Command, arg: str) -> None:
        result = command.run(self, arg)
        if result is not None:
            await result

    @work(exclusive=True, group="turn")
    async def _run_turn(self, prompt: str) -> None:
        error = None
        try:
            async for _event in self.agent.stream(prompt):
                pass  # the subscription set up in on_mount shows each event
        except GodwitError as exc:
            error = str(exc)
        self.post_message(TurnDone(error))

    def on_unmount(self) -> None:
        self._unsubscribe()

    def on_agent_event(self, message: AgentEvent) -> None:
        event = message.event
        self.transcript.show(event)
        if isinstance(event, ev.PermissionModeChanged):
            self.status.mode = event.mode
        elif isinstance(event, ev.ModelChanged):
            self.status.model = event.model.split(":", 1)[-1]
        elif isinstance(event, ev.Progress):
            self.status.progress = "" if event.finished else event.message
        elif isinstance(event, ev.Usage):
            status = self.status
            status.tokens_in = event.session_input_tokens
            status.tokens_out = event.session_output_tokens
            status.cost = event.session_cost_usd

    def on_turn_done(self, message: TurnDone) -> None:
        if message.error:
            self.transcript.notice(f"error: {message.error}", "error")
        self.busy = False
        # An interrupted call records its usage late: take the totals from the session.
        self._refresh_totals()
        self.refresh_context()
        if self.queued:
            prompt = self.queued.pop(0)
            self._show_queue()
            self.submit(prompt)

    def watch_busy(self, busy: bool) -> None:
        self.status.busy = busy
        if not busy:
            self.status.progress = ""  # a turn that failed mid-load sends no finished event

    # -- status -----------------------------------------------------------------------------------

    def _refresh_totals(self) -> None:
        totals = self.agent.runtime().totals
        status = self.status
        status.tokens_in, status.tokens_out = totals.input_tokens, totals.output_tokens
        status.cost = totals.cost_usd

    def refresh_context(self, usage: dict[str, Any] | None = None) -> None:
        """Show how full the context window is (from `Agent.context_usage()`)."""
        try:
            usage = usage or self.agent.context_usage()
        except GodwitError:
            return
        self.status.context_total, self.status.context_window = usage["total"], usage["window"]

    # -- keys ---------------------------------------------------------------------------------------

    def action_interrupt(self) -> None:
        if self.screen.get_selected_text():
            raise SkipAction()  # let Ctrl+C copy the selection
        if self.busy:
            self.interrupt()
            return
        if self.screen is self.screen_stack[0] and self.prompt_input.text:
            self.prompt_input.clear()
            return
        now = time.monotonic()
        if now - self._last_ctrl_c < QUIT_PRESS_S:
            self.exit(0)
            return
        self._last_ctrl_c = now
        self.status.hint = "press ctrl+c again to quit"
        self.set_timer(QUIT_PRESS_S, lambda: setattr(self.status, "hint", ""))

    def interrupt(self) -> None:
        """Stop what runs: the prompt (its partial reply is kept) or a stoppable command."""
        if self.interrupt_command is not None:
            self.interrupt_command()
        else:
            self.agent.cancel()

    def action_quit_if_empty(self) -> None:
        if self.screen is self.screen_stack[0] and self.prompt_input.text:
            raise SkipAction()  # ctrl+d deletes forward in a non-empty input
        if self.busy:
            self.interrupt()
        self.exit(0)

    def action_escape(self) -> None:
        if self.busy:
            self._take_back_queue()
            self.interrupt()
            return
        now = time.monotonic()
        if now - self._last_escape < DOUBLE_PRESS_S:
            self._last_escape = 0.0
            session_ops.open_rewind(self)
        else:
            self._last_escape = now

    # -- which conversation -------------------------------------------------------------------

    async def new_conversation(self) -> None:
        """/clear: a fresh conversation (a new session); the old one stays resumable."""
        old = self.agent.session_id if self.agent.saved else None
        await self._switch(None)
        if old is not None:
            self.transcript.notice(
                f"New conversation. The previous one is session {old} (/resume lists it).",
                "dim-notice",
            )

    def open_resume_picker(self) -> None:
        """/resume: choose a session of this directory to continue."""
        from agent.session.index import godwit_home, list_sessions
        from agent.ui.resume_screen import ResumeScreen

        rows = list_sessions(godwit_home(), self.agent.runtime().root)
        current = self.agent.session_id

        def chosen(session_id: str | None) -> None:
            if session_id and session_id != current:
                self.run_worker(self._switch(session_id), group="command")

        self.push_screen(ResumeScreen(rows, current), chosen)

    async def _switch(self, session_id: str | None) -> None:
        self._unsubscribe()
        self.agent.switch_session(session_id)
        self.transcript.clear()
        try:
            self._attach()
        except GodwitError as exc:
            self.transcript.notice(f"cannot open that session: {exc}", "error")

    async def action_cycle_mode(self) -> None:
        if self.screen is not self.screen_stack[0]:
            raise SkipAction()
        mode = self.agent.permission_mode
        if mode == "bypassPermissions":
            # Chosen on the command line on purpose; not something to cycle out of by accident.
            return
        following = MODES[(MODES.index(mode) + 1) % len(MODES)] if mode in MODES else "default"
        # Recorded as an event; the status bar follows it in on_agent_event.
        await self.agent.aset_permission_mode(following)
        self.status.mode = following
