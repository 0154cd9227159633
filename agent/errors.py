"""The runtime's one exception family.

`GodwitError` is "something went wrong that we can explain"; `UsageError` is the caller misusing
an API (bad argument, unknown session), kept apart from `ProviderError` (the model or its service
misbehaved) so that a script can tell its own bug from an outage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.messages import Message


class GodwitError(Exception):
    """Base of every error the runtime raises on purpose."""


class UsageError(GodwitError):
    """The caller asked for something that cannot be done (bad option, unknown id)."""


class ConfigError(UsageError):
    """A settings file or model spec is invalid."""


class ProviderError(GodwitError):
    """A model call failed after retries. `kind` says how: api, auth, model, incomplete, context."""

    def __init__(self, message: str, *, kind: str = "api", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class ModelUnavailable(ProviderError):
    """The model id is unknown to the service or retired; the message says how to pick another."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, kind="model", status=status)


class SessionError(GodwitError):
    """A session log cannot be read (corruption other than a torn last line)."""


class TurnInterrupted(GodwitError):
    """The user interrupted a model call; `partial` is the reply streamed so far (None when
    nothing had arrived). The loop records it and ends the turn as "interrupted"."""

    def __init__(self, partial: Message | None = None) -> None:
        super().__init__("interrupted by the user")
        self.partial = partial
