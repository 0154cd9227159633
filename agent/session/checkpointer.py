"""The session's side of checkpoints: snapshot the work tree and describe it as an event.

Each checkpoint event gets its own id (what users type), pointing at a code snapshot in the
store (`code_ref`); when nothing changed, several checkpoints share one snapshot, so a turn that
changed nothing still has its own point to rewind the conversation to.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from agent import events as ev
from agent.errors import GodwitError


class CheckpointFailed(GodwitError):
    """A snapshot could not be taken; `fatal` when checkpoints cannot work at all here."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class Checkpointer:
    """Wraps the project's CheckpointStore (opened on first use: it needs git)."""

    def __init__(self, cwd: Path, home: Path, *, size_cap: int) -> None:
        self.cwd = cwd
        self.home = home
        self.size_cap = size_cap
        self._store = None

    @property
    def store(self):
        if self._store is None:
            try:
                from checkpoints import CheckpointStore
            except ImportError as exc:  # GitPython refuses to load without a git executable
                raise CheckpointFailed(
                    f"git is not available ({exc}); checkpoints are off for "
                    "this session. Install git to have them.",
                    fatal=True,
                ) from exc
            from checkpoints import CheckpointError

            try:
                self._store = CheckpointStore(self.cwd, self.home, size_cap=self.size_cap)
            except CheckpointError as exc:
                raise CheckpointFailed(
                    f"The checkpoint store cannot be opened: {exc}", fatal=True
                ) from exc
        return self._store

    def snapshot(
        self,
        session_id: str,
        turn: int,
        label: str,
        reason: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> ev.Checkpoint:
        """Snapshot the work tree; `progress(done, total)` hears about a large store."""
        store = self.store
        from checkpoints import CheckpointError

        try:
            cp = store.snapshot(
                session_id=session_id, turn=turn, label=label, reason=reason, progress=progress
            )
        except CheckpointError as exc:
            raise CheckpointFailed(f"Checkpoint failed: {exc}") from exc
        return ev.Checkpoint(
            id=secrets.token_hex(4),
            turn=turn,
            label=label,
            reason=reason,
            files=[
                ev.FileChange(
                    path=f.path,
                    status=f.status,
                    added=f.added_lines or 0,
                    deleted=f.deleted_lines or 0,
                )
                for f in cp.files
            ],
            skipped=[s.path for s in cp.skipped],
            code_ref=cp.id,
            created_commit=not cp.unchanged,
        )
