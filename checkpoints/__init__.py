"""Checkpoints: snapshots of the work tree in a shadow git repository, and their restore.

The whole API is `CheckpointStore` (see store.py and README.md), its pydantic result models,
`parse_duration` and the `CheckpointError` family. This package imports no other Godwit package.
"""

from .duration import parse_duration
from .errors import (
    CheckpointError,
    CheckpointNotFound,
    GitFailed,
    InvalidDuration,
    NothingToUndo,
    RestoreLocked,
)
from .models import Checkpoint, Conflict, Diff, FileChange, PruneResult, RestoreResult, SkippedFile
from .store import CheckpointStore

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointNotFound",
    "CheckpointStore",
    "Conflict",
    "Diff",
    "FileChange",
    "GitFailed",
    "InvalidDuration",
    "NothingToUndo",
    "PruneResult",
    "RestoreLocked",
    "RestoreResult",
    "SkippedFile",
    "parse_duration",
]
