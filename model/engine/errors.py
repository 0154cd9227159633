"""The engine's exception family (a branch of `model.errors.ModelError`)."""

from __future__ import annotations

from model.errors import ModelError


class EngineError(ModelError):
    """Base class of every error the engine raises."""


class RequestTooLargeError(EngineError, ValueError):
    """A request cannot fit in the memory the planner has; nothing was allocated for it."""


class CacheFullError(EngineError):
    """Every cache block is held by a running sequence; retry when one finishes."""
