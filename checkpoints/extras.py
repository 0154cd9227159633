"""The "extras" of a snapshot: what git cannot hold, kept in the checkpoint's metadata.

{"file_mode": 0o644, "exec_mode": 0o755,      the usual permission bits of the tree
 "modes": {path: perm},                       files whose bits differ from those
 "empty_dirs": {path: perm},                  directories holding nothing captured
 "skipped": {path: size}}                     files left out (over the cap, unreadable)
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter


def extras_digest(extras: dict) -> str:
    return hashlib.sha1(json.dumps(extras, sort_keys=True).encode()).hexdigest()


def empty_extras() -> dict:
    return {"file_mode": 0o644, "exec_mode": 0o755, "modes": {}, "empty_dirs": {}, "skipped": {}}


def update_modes(
    defaults: tuple[int, int] | None,
    old_modes: dict[bytes, int],
    files: dict[bytes, tuple],
    changed: list[bytes],
    removed: list[bytes],
) -> tuple[tuple[int, int], dict[bytes, int]]:
    """The usual permission bits and the exceptions to them, updated for the touched paths
    only (the first time, computed over all files)."""
    if defaults is None:
        plain: Counter = Counter()
        execs: Counter = Counter()
        for key in files.values():
            if stat.S_ISREG(key[0]):
                (execs if key[0] & 0o100 else plain)[key[0] & 0o7777] += 1
        defaults = (
            plain.most_common(1)[0][0] if plain else 0o644,
            execs.most_common(1)[0][0] if execs else 0o755,
        )
        modes: dict[bytes, int] = {}
        touched = files.keys()
    else:
        modes = dict(old_modes)
        for p in removed:
            modes.pop(p, None)
        touched = changed
    file_mode, exec_mode = defaults
    for p in touched:
        key = files.get(p)
        if key is not None and stat.S_ISREG(key[0]):
            perm = key[0] & 0o7777
            if perm != (exec_mode if key[0] & 0o100 else file_mode):
                modes[p] = perm
                continue
        modes.pop(p, None)
    return defaults, modes


def make_extras(
    defaults: tuple[int, int] | None,
    modes: dict[bytes, int],
    collapsed: dict[bytes, dict],
    skipped: dict[bytes, int],
) -> dict:
    """Permission bits beyond the usual ones, empty dirs, skipped files (JSON-ready)."""
    empty = {}
    for rec in collapsed.values():
        for d in rec["empty"]:
            empty[os.fsdecode(d)] = rec["dirs"][d][0] & 0o7777
    file_mode, exec_mode = defaults or (0o644, 0o755)
    return {
        "file_mode": file_mode,
        "exec_mode": exec_mode,
        "modes": {os.fsdecode(p): perm for p, perm in modes.items()},
        "empty_dirs": empty,
        "skipped": {os.fsdecode(p): s for p, s in sorted(skipped.items())},
    }
