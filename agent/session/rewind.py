"""Rewind: restore code, conversation or both to a checkpoint, and undo that.

Code goes through the checkpoint store (which snapshots the current state first, so the restore
can be undone); conversation is a Rewind event in the append-only log, from which the
conversation view is rebuilt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import events as ev
from agent.errors import GodwitError, UsageError

if TYPE_CHECKING:  # the runtime builds on the session; rewind only names its type
    from agent.runtime import Runtime

RESTORES = ("code", "conversation", "both")


def _checkpoint_events(rt: Runtime) -> list[ev.Checkpoint]:
    return [e for e in rt.session.events if isinstance(e, ev.Checkpoint)]


def find_checkpoint(rt: Runtime, ref: str) -> ev.Checkpoint:
    """A checkpoint of this session by id or unique prefix (its code snapshot id works too)."""
    ref = ref.strip()
    if not ref:
        raise UsageError("Give a checkpoint id (see `godwit checkpoints`).")
    cps = _checkpoint_events(rt)
    exact = [c for c in cps if c.id == ref]
    if exact:
        return exact[-1]
    by_prefix = {c.id: c for c in cps if c.id.startswith(ref)}
    if len(by_prefix) == 1:
        return next(iter(by_prefix.values()))
    if len(by_prefix) > 1:
        raise UsageError(f"Checkpoint id {ref!r} is ambiguous: {', '.join(sorted(by_prefix))}")
    by_code = [c for c in cps if c.code_ref and c.code_ref.startswith(ref)]
    if by_code:
        return by_code[-1]
    raise UsageError(f"No checkpoint {ref!r} in session {rt.id}. `godwit checkpoints` lists them.")


def _code_ref(cp: ev.Checkpoint) -> str:
    if cp.code_ref is None:
        raise UsageError(
            f"Checkpoint {cp.id} has no code snapshot (checkpoints were off); "
            "its conversation can be restored with --conversation."
        )
    return cp.code_ref


def _store(rt: Runtime):
    if rt.checkpointer is None:
        raise UsageError("Checkpoints are turned off for this session (settings: checkpoints).")
    return rt.checkpointer.store


def _wrap(exc: Exception, cp: ev.Checkpoint | None = None) -> GodwitError:
    from checkpoints import CheckpointNotFound

    if cp is not None and isinstance(exc, CheckpointNotFound):
        return UsageError(
            f"Checkpoint {cp.id} (turn {cp.turn}) no longer has its code snapshot: "
            "it was pruned. Its conversation can still be restored with "
            "--conversation."
        )
    return GodwitError(f"Checkpoint store: {exc}")


def list_checkpoints(rt: Runtime) -> list[dict[str, Any]]:
    rows = []
    size = None
    stored: set[str] | None = None
    events = _checkpoint_events(rt)
    restores: dict[str, list[str] | None] = {}
    if rt.checkpointer is not None:
        from checkpoints import CheckpointError

        try:
            store = _store(rt)
            size = store.size_bytes()
            stored = {c.id for c in store.list()}
            restores = store.would_change([c.code_ref for c in events if c.code_ref in stored])
        except (CheckpointError, GodwitError):
            size = None
    for c in events:
        rows.append(
            {
                "id": c.id,
                "created": c.ts,
                "turn": c.turn,
                "label": c.label,
                "reason": c.reason,
                "code_ref": c.code_ref,
                "changed": c.created_commit,
                # False once `checkpoints --prune` removed the code snapshot (conversation only).
                "has_code": c.code_ref is not None and (stored is None or c.code_ref in stored),
                # What changed since the checkpoint before (nothing when the snapshot is shared).
                "files": [f.model_dump() for f in c.files] if c.created_commit else [],
                # What restoring its code would change in the work tree now (None: unknown).
                "restores": restores.get(c.code_ref) if c.code_ref else None,
                "skipped": c.skipped,
                "store_size_bytes": size,
            }
        )
    return rows


def diff(rt: Runtime, ref: str) -> dict[str, Any]:
    from checkpoints import CheckpointError

    cp = find_checkpoint(rt, ref)
    try:
        d = _store(rt).diff(_code_ref(cp))
    except CheckpointError as exc:
        raise _wrap(exc, cp) from exc
    files = [f.model_dump(mode="json", exclude={"patch"}) for f in d.files]
    summary = "".join(f"{f['status']:>9}  {f['path']}\n" for f in files)
    return {
        "checkpoint": cp.id,
        "code_ref": cp.code_ref,
        "files": files,
        "conflicts": [c.model_dump(mode="json") for c in d.conflicts],
        "text": (summary + "\n" + d.text()) if files else "",
    }


async def rewind(rt: Runtime, ref: str, restore: str = "both") -> dict[str, Any]:
    """Restore `restore` (code, conversation or both) to checkpoint `ref`."""
    if restore not in RESTORES:
        raise UsageError(f"restore must be one of {', '.join(RESTORES)}, not {restore!r}")
    await complete_interrupted(rt)
    cp = find_checkpoint(rt, ref)
    saved = None
    changed: list[dict] = []
    if restore in ("code", "both"):
        from checkpoints import CheckpointError

        # The conversation side rides in the store's journal (written before any file
        # changes), so a kill mid-restore is completed on both sides: see complete_interrupted.
        meta = {
            "rewind": 1,
            "session_id": rt.id,
            "checkpoint": cp.id,
            "restore": restore,
            "to_seq": cp.seq,
        }
        try:
            result = _store(rt).restore(_code_ref(cp), session_id=rt.id, meta=meta)
        except CheckpointError as exc:
            raise _wrap(exc, cp) from exc
        saved = result.pre_restore_id
        changed = [f.model_dump(mode="json") for f in result.changed]
    await rt.record(
        ev.Rewind(checkpoint=cp.id, restore=restore, to_seq=cp.seq, saved_checkpoint=saved),
        sync=True,
    )
    what = {"code": "Code", "conversation": "Conversation", "both": "Code and conversation"}
    return {
        "checkpoint": cp.id,
        "restore": restore,
        "saved_checkpoint": saved,
        "changed": changed,
        "prompt": cp.label if cp.reason == "turn_start" else None,
        "message": f"{what[restore]} restored to checkpoint {cp.id} (turn {cp.turn}: "
        f"{cp.label[:60]}). Undo with `godwit undo-rewind`.",
    }


def interrupted_rewinds(rt: Runtime) -> list[ev.Rewind]:
    """The Rewind events this session still owes: a kill during `rewind` can leave the code
    restored (the store's journal finishes it) but the rewind unrecorded. Each restore on the
    store's undo stack that this session started (its `meta`, written to the journal before any
    file changed) and that has no Rewind event yet is owed; recording it rewinds the
    conversation too, so code and conversation end up together and `undo-rewind` works."""
    if rt.checkpointer is None or not _store_may_owe(rt):
        return []
    from checkpoints import CheckpointError

    try:
        store = _store(rt)
        store.recover()
        stack = store.restores()
    except (CheckpointError, GodwitError):
        return []  # the store's own errors surface when it is used
    recorded = {
        e.saved_checkpoint
        for e in rt.session.events
        if isinstance(e, ev.Rewind) and e.saved_checkpoint
    }
    owed = []
    for item in stack:
        meta = item.get("meta") or {}
        if meta.get("rewind") != 1 or meta.get("session_id") != rt.id or item["pre"] in recorded:
            continue
        owed.append(
            ev.Rewind(
                checkpoint=meta["checkpoint"],
                restore=meta["restore"],
                to_seq=meta.get("to_seq"),
                saved_checkpoint=item["pre"],
            )
        )
    return owed


def _store_may_owe(rt: Runtime) -> bool:
    """A cheap look (no git) at the store's files: a journal, or a restore with our meta."""
    from checkpoints.store import store_dir_for

    d = store_dir_for(rt.checkpointer.cwd.resolve(), rt.checkpointer.home)
    if (d / "journal.json").exists():
        return True
    try:
        return rt.id in (d / "state.json").read_text(errors="replace")
    except OSError:
        return False


async def complete_interrupted(rt: Runtime) -> list[ev.Rewind]:
    """Record the Rewind events this session owes (see `interrupted_rewinds`)."""
    return [await rt.emit(e, sync=True) for e in interrupted_rewinds(rt)]


def _last_rewind(rt: Runtime) -> ev.Rewind | None:
    stack: list[ev.Rewind] = []
    for e in rt.session.events:
        if isinstance(e, ev.Rewind):
            if e.undo:
                if stack:
                    stack.pop()
            else:
                stack.append(e)
    return stack[-1] if stack else None


async def undo_rewind(rt: Runtime) -> dict[str, Any]:
    """Bring back exactly what the last rewind replaced."""
    await complete_interrupted(rt)
    last = _last_rewind(rt)
    if last is None:
        raise UsageError(f"Nothing to undo: session {rt.id} has no rewind to undo.")
    if last.restore in ("code", "both"):
        from checkpoints import CheckpointError

        try:
            _store(rt).restore(last.saved_checkpoint)
        except CheckpointError as exc:
            raise _wrap(exc) from exc
    await rt.record(
        ev.Rewind(
            checkpoint=last.checkpoint,
            restore=last.restore,
            undo=True,
            saved_checkpoint=last.saved_checkpoint,
        ),
        sync=True,
    )
    return {
        "checkpoint": last.checkpoint,
        "restore": last.restore,
        "undo": True,
        "message": f"Undid the rewind to {last.checkpoint} ({last.restore}).",
    }
