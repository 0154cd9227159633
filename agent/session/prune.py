"""`godwit checkpoints --prune`: drop old code snapshots, and say so in the listing's terms.

The store counts snapshots, and several checkpoints share one when nothing changed between them
(a turn's start and the snapshot before its first edit, say). People read the listing, which
shows checkpoints; so the report counts checkpoints, over this project's sessions, the same way
`godwit checkpoints` marks them (`has_code`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent import events as ev
from agent.describe import count
from agent.errors import GodwitError, SessionError, UsageError


def prune(cwd: Path, older_than: str) -> dict[str, Any]:
    """Drop code snapshots older than `older_than` (e.g. 30d); the report names checkpoints."""
    from agent.session.index import godwit_home, list_sessions
    from agent.session.log import read_log
    from checkpoints import CheckpointError, CheckpointStore, parse_duration

    home = godwit_home()
    try:
        store = CheckpointStore(cwd, home)
        result = store.prune(parse_duration(older_than))
        stored = {c.id for c in store.list()}
    except CheckpointError as exc:
        if isinstance(exc, ValueError):
            raise UsageError(str(exc)) from exc
        raise GodwitError(f"Checkpoint store: {exc}") from exc
    removed_now = set(result.removed)
    removed, kept, earlier = [], [], []
    for row in list_sessions(home, cwd):
        try:
            events = read_log(Path(row["path"])).events
        except (SessionError, OSError):
            continue  # an unreadable log has no checkpoints to report
        for cp in events:
            if not isinstance(cp, ev.Checkpoint) or cp.code_ref is None:
                continue
            if cp.code_ref in removed_now:
                removed.append(cp.id)
            elif cp.code_ref in stored:
                kept.append(cp.id)
            else:
                earlier.append(cp.id)
    total = len(removed) + len(kept) + len(earlier)
    message = (
        f"Removed {len(removed)} of {count(total, 'checkpoint')} in this project (older "
        f"than {older_than}); {len(kept)} kept"
    )
    message += f", {len(earlier)} pruned before." if earlier else "."
    if kept and older_than.strip() in ("0", "0s", "0m", "0h", "0d"):
        message += " The newest snapshot, and any an undo needs, are always kept."
    if removed:
        message += " Their conversation can still be restored (--conversation)."
    message += (
        f" Store: {result.size_before / 2**20:.1f} MiB -> {result.size_after / 2**20:.1f} MiB."
    )
    return {
        "removed_checkpoints": removed,
        "kept_checkpoints": kept,
        "pruned_before": earlier,
        "removed_snapshots": sorted(removed_now),
        "kept_snapshots": result.kept,
        "size_before": result.size_before,
        "size_after": result.size_after,
        "message": message,
    }
