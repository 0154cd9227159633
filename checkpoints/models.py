"""The pydantic models the store returns: Checkpoint, Diff, RestoreResult, PruneResult.

All of them serialise to JSON (`model_dump_json()`, for `--json`); `created` and other times are
timezone-aware UTC datetimes, written ISO 8601. Paths are `str` decoded from the file system's
bytes with `os.fsdecode` (so `os.fsencode(path)` gives the exact name back, even for names that
are not UTF-8); in JSON such bytes are written as backslash escapes (`caf\\xe9.txt`).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer


def _json_path(p: str) -> str:
    return os.fsencode(p).decode("utf-8", "backslashreplace")


PathStr = Annotated[str, PlainSerializer(_json_path, return_type=str, when_used="json")]
"""A work-tree relative path ('/'-separated); JSON shows undecodable bytes as \\xNN."""

FsText = Annotated[str, PlainSerializer(_json_path, return_type=str, when_used="json")]
"""Text read from files (a patch): undecodable bytes kept as surrogates, escaped in JSON."""

ChangeStatus = Literal["added", "modified", "deleted", "mode", "type"]
EntryKind = Literal["file", "symlink", "dir"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileChange(_Model):
    """One path that differs between two states (checkpoint vs previous, or now vs a checkpoint)."""

    path: PathStr
    status: ChangeStatus
    kind: EntryKind = "file"
    """What the path is on the side that has it (the new side, or the old one for deletions)."""
    old_mode: str | None = None
    """Permission bits and type before, octal as `ls` would show them (e.g. "100600")."""
    new_mode: str | None = None
    added_lines: int | None = None
    """Lines added (None for binary files, symlinks, dirs, or when not counted)."""
    deleted_lines: int | None = None
    binary: bool = False
    patch: FsText | None = None
    """Unified diff of this file (in `Diff` only; None for binary files and mode-only changes)."""


class SkippedFile(_Model):
    """A file left out of a snapshot, never silently."""

    path: PathStr
    size: int
    reason: str = "over size cap"


class Checkpoint(_Model):
    """A snapshot of the work tree, as the runtime logs it in its `checkpoint` event."""

    id: str
    """Short id (first 12 hex digits of the shadow commit); any unique prefix is accepted."""
    commit: str
    tree: str
    created: datetime
    session_id: str | None = None
    turn: int | None = None
    label: str = ""
    """The label or prompt of the turn that took it."""
    reason: str = ""
    """Why it was taken: "turn-start", "before-tool", "pre-restore", ... (free text)."""
    parent: str | None = None
    """The checkpoint this one is compared with (the store's head when it was taken)."""
    files: list[FileChange] = Field(default_factory=list)
    """Files changed vs `parent` (at most `files_listed_max`; `files_changed` has the total)."""
    files_changed: int = 0
    lines_added: int = 0
    lines_deleted: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    empty_dirs: int = 0
    store_size: int = 0
    """Bytes used by the whole store (all checkpoints of this project) when it was taken."""
    unchanged: bool = False
    """True when `snapshot()` found nothing changed and returned the previous checkpoint."""


class Conflict(_Model):
    """A path a restore left alone because something it must not destroy is in the way."""

    path: PathStr
    reason: str


class Diff(_Model):
    """What `restore(checkpoint)` would change in the work tree now (a preview)."""

    checkpoint: str
    files: list[FileChange] = Field(default_factory=list)
    """Each path a restore would change, with its unified diff (current -> checkpoint)."""
    conflicts: list[Conflict] = Field(default_factory=list)

    def text(self) -> str:
        """All the patches, one after the other, as `git diff` would print them."""
        return "".join(f.patch or "" for f in self.files)


class RestoreResult(_Model):
    """The outcome of `restore()` or `undo_restore()`."""

    checkpoint: str
    """The checkpoint the work tree now matches."""
    pre_restore_id: str
    """The snapshot taken just before, which `undo_restore()` brings back."""
    undo: bool = False
    recovered: bool = False
    """True when this restore was finished by `recover()` after an interrupted run."""
    meta: dict | None = None
    """The `meta` given to `restore()`, if any."""
    changed: list[FileChange] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    finished: datetime


class PruneResult(_Model):
    removed: list[str] = Field(default_factory=list)
    kept: int = 0
    size_before: int = 0
    size_after: int = 0
