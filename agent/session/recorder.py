"""The one path every event takes: `Recorder.record`.

Recording an event appends it to the session log (all but the streaming deltas), applies it to
the state derived from the log (the conversation, and whatever the runtime derives, such as the
permission policy), then hands it to every subscriber (the SDK stream, the UI, the headless
printer) and finally to the user's `on_event` hooks. Nothing else writes the log, so what a
subscriber sees, what is on disk and what the model is told cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from agent import events as ev
from agent.hooks import Hooks, call

log = logging.getLogger("godwit")

Subscriber = Callable[[ev.Event], None]


class _Log(Protocol):
    def append(self, event: ev.Event, *, sync: bool = False) -> None: ...


class _Conversation(Protocol):
    def apply(self, event: ev.Event) -> None: ...


class RecordedSession(Protocol):
    """What the recorder uses of a session (OpenedSession, agent/session/open.py)."""

    log: _Log
    events: list[ev.Event]
    conversation: _Conversation


class Recorder:
    """Records events of one session and tells the subscribers."""

    def __init__(self, session: RecordedSession, hooks: Hooks | None = None) -> None:
        self.session = session
        self.hooks = hooks or Hooks()
        # Applied before the subscribers see the event: state that follows from the log.
        self.appliers: list[Subscriber] = [session.conversation.apply]
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call `fn(event)` for every event from now on; returns the call that unsubscribes."""
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def write(self, event: ev.Event, *, sync: bool = False) -> ev.Event:
        """Log and apply `event`, then tell the subscribers (no hooks: usable outside a loop)."""
        if not event.ephemeral:
            self.session.log.append(event, sync=sync)
            self.session.events.append(event)
            for apply in self.appliers:
                apply(event)
        for fn in list(self._subscribers):
            fn(event)
        return event

    async def record(self, event: ev.Event, *, sync: bool = False) -> ev.Event:
        """`write`, then the `on_event` hooks (a failing hook is logged, never fatal)."""
        self.write(event, sync=sync)
        for hook in self.hooks.on_event:
            try:
                await call(hook, event)
            except Exception:  # a user's hook must not kill the session
                log.exception("on_event hook failed")
        return event
