"""The messages that carry what happens in the session up to the app's handlers."""

from __future__ import annotations

from textual.message import Message

from agent import events as ev


class AgentEvent(Message):
    """One event from the running prompt (or from a command that logged events)."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class TurnDone(Message):
    """The prompt's stream ended; `error` is set when the runtime refused or failed."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error
