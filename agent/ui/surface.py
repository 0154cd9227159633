"""What the slash commands and the session operations use of the app, as a Protocol, so that
they need not import the app module (which imports them). `GodwitApp` implements it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from agent.ui.prompt_input import PromptInput
from agent.ui.status import StatusBar
from agent.ui.transcript import Transcript


class SessionApp(Protocol):
    agent: Any
    busy: bool
    # Set while a command that can be stopped runs (/compact): Esc / Ctrl+C call it.
    interrupt_command: Callable[[], Any] | None

    @property
    def transcript(self) -> Transcript: ...

    @property
    def prompt_input(self) -> PromptInput: ...

    @property
    def status(self) -> StatusBar: ...

    def refresh_context(self, usage: dict[str, Any] | None = None) -> None: ...

    def push_screen(self, screen: Any, callback: Any = None) -> Any: ...

    def run_worker(self, work: Any, *, group: str = "default") -> Any: ...

    def exit(self, result: Any = None) -> None: ...

    async def new_conversation(self) -> None: ...

    def open_resume_picker(self) -> None: ...
