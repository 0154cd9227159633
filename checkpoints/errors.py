"""The one exception family of the checkpoints package.

`CheckpointError` is the base; callers that only want "the checkpoint operation failed" catch
it. Subclasses carry what the caller needs to word a message (the id asked for, the lock holder).
"""

from __future__ import annotations


class CheckpointError(Exception):
    """Any failure of the checkpoint store (base class)."""


class CheckpointNotFound(CheckpointError):
    """No checkpoint matches the id or prefix given."""

    def __init__(self, ref: str, *, ambiguous: list[str] | None = None) -> None:
        self.ref = ref
        self.ambiguous = ambiguous or []
        if self.ambiguous:
            msg = f"checkpoint prefix {ref!r} is ambiguous: matches {', '.join(self.ambiguous[:5])}"
        else:
            msg = f"no checkpoint matches {ref!r}"
        super().__init__(msg)


class RestoreLocked(CheckpointError):
    """Another process holds the store's lock (a restore or snapshot is in progress)."""

    def __init__(self, store: str, holder: dict | None) -> None:
        self.store = store
        self.holder = holder or {}
        pid = self.holder.get("pid", "?")
        session = self.holder.get("session_id") or "unknown session"
        op = self.holder.get("op", "an operation")
        since = self.holder.get("since", "?")
        super().__init__(
            f"the checkpoint store {store} is locked by pid {pid} ({session}), "
            f"running {op} since {since}; try again when it has finished"
        )


class NothingToUndo(CheckpointError):
    """`undo_restore()` was called but no restore is on the stack."""


class GitFailed(CheckpointError):
    """A git command of the shadow repository failed (its stderr is in the message)."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args[:4])} failed ({returncode}): {stderr.strip()[:2000]}")


class InvalidDuration(CheckpointError, ValueError):
    """`parse_duration` could not read its argument."""
