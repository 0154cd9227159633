"""`CheckpointStore`: snapshots of a work tree in a shadow git repository, and their restore.

    store = CheckpointStore(Path("."), Path(os.environ["GODWIT_HOME"]))
    cp = store.snapshot(session_id="s1", turn=3, label="fix the parser", reason="turn-start")
    store.diff(cp.id)        # what a restore would change
    store.restore(cp.id)     # RestoreResult(pre_restore_id=...)
    store.undo_restore()     # back to the state before that restore

Every public method first finishes a restore that a killed process left half done (see
`recover`). Restores take the store's lock without waiting (`RestoreLocked` names the holder);
snapshots, diffs and prunes wait up to `lock_wait` seconds for it.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitdb import IStream, LooseObjectDB

from .changes import add_line_counts, add_patches, file_changes, perm_for, raw_diff
from .errors import CheckpointError, CheckpointNotFound, NothingToUndo, RestoreLocked
from .extras import empty_extras, extras_digest
from .gitenv import EMPTY_TREE, ShadowGit
from .journal import Journal, StoreLock, now_iso, read_json, write_json
from .models import Checkpoint, Conflict, Diff, PruneResult, RestoreResult, SkippedFile
from .project import project_folder
from .restore import KEPT_IGNORED, Applier, keep_ignored_at_target, same_as_target
from .scan import Scanner

REF_PREFIX = "refs/godwit/checkpoints/"
UNDO_DEPTH = 100  # restores that undo_restore() can walk back
_SUBJECT = "godwit checkpoint"


def store_dir_for(work_tree: Path, home: Path) -> Path:
    """`<home>/checkpoints/<slug>-<hash of the absolute path>`: one store per project."""
    return home / "checkpoints" / project_folder(work_tree, digest_chars=16)


def user_exclude_file(work_tree: Path) -> Path | None:
    """The `info/exclude` of the user's repository around `work_tree` (read, never written)."""
    d = work_tree.resolve()
    while True:
        dot = d / ".git"
        gitdir = None
        if dot.is_dir():
            gitdir = dot
        elif dot.is_file():
            text = dot.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                gitdir = (d / text[len("gitdir:") :].strip()).resolve()
        if gitdir is not None:
            common = gitdir
            commondir = gitdir / "commondir"
            if commondir.is_file():
                common = (gitdir / commondir.read_text().strip()).resolve()
            return common / "info" / "exclude"
        if d.parent == d:
            return None
        d = d.parent


class CheckpointStore:
    """Checkpoints of one work tree. See the module docstring and checkpoints/README.md."""

    def __init__(
        self,
        work_tree: Path,
        home: Path,
        *,
        size_cap: int = 50 * 2**20,
        files_listed_max: int = 1000,
        line_counts_max: int = 300,
        lock_wait: float = 30.0,
    ):
        """`work_tree`: the project; `home`: GODWIT_HOME; `size_cap`: files larger than this
        many bytes are left out of snapshots (and listed as skipped); `files_listed_max`: most
        files a checkpoint lists; `line_counts_max`: above this many changed files, a
        checkpoint's line counts are not computed (None); `lock_wait`: seconds a snapshot, diff
        or prune waits for another process's lock."""
        self.work_tree = Path(work_tree).resolve()
        if not self.work_tree.is_dir():
            raise CheckpointError(f"work tree {self.work_tree} is not a directory")
        self.store_dir = store_dir_for(self.work_tree, Path(home))
        self.size_cap = size_cap
        self.files_listed_max = files_listed_max
        self.line_counts_max = line_counts_max
        self.lock_wait = lock_wait
        self.store_dir.mkdir(parents=True, exist_ok=True)
        (self.store_dir / "home").mkdir(exist_ok=True)
        exclude = user_exclude_file(self.work_tree)
        self._git = ShadowGit(
            self.store_dir / "git", self.work_tree, self.store_dir / "home", exclude
        )
        self._scanner = Scanner(self._git, self.work_tree, self.store_dir, size_cap, exclude)
        self._journal = Journal(self.store_dir)
        self._lock = StoreLock(self.store_dir)
        self._state_path = self.store_dir / "state.json"
        self._cache: dict[str, tuple[Checkpoint, dict]] = {}
        self._sizes = _DirSizes(self.store_dir)
        self._odb = LooseObjectDB(str(self.store_dir / "git" / "objects"))
        if not (self.store_dir / "git" / "HEAD").exists():
            with self._locked("init", None, self.lock_wait, recover=False):
                if not (self.store_dir / "git" / "HEAD").exists():
                    self._git.init_repo()
                    self._exclude_home(Path(home).resolve())
                    write_json(
                        self._state_path,
                        {"work_tree": str(self.work_tree), "head": None, "stack": []},
                    )

    # -- public API ----------------------------------------------------------------------------

    def snapshot(
        self,
        session_id: str | None = None,
        turn: int | None = None,
        label: str = "",
        reason: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> Checkpoint:
        """Snapshot the work tree. With nothing changed since the last checkpoint, no commit is
        made and that checkpoint comes back with `unchanged=True`. `progress(done, total)` is
        called (from worker threads) while many files are stored, as in a first snapshot."""
        with self._locked("snapshot", session_id, self.lock_wait):
            self._scanner.progress = progress
            try:
                return self._snapshot(session_id, turn, label, reason)
            finally:
                self._scanner.progress = None

    def list(self, session_id: str | None = None) -> list[Checkpoint]:
        """All checkpoints (of one session if given), oldest first."""
        self._recover_if_free()
        cps = [
            cp
            for cp, _ in self._load_all().values()
            if session_id is None or cp.session_id == session_id
        ]
        return sorted(cps, key=lambda c: c.created)

    def get(self, id_or_prefix: str) -> Checkpoint:
        """The checkpoint whose id (or commit sha) starts with `id_or_prefix`."""
        self._recover_if_free()
        return self._resolve(id_or_prefix)[0]

    def diff(self, checkpoint: str) -> Diff:
        """What `restore(checkpoint)` would change now: per file status and unified diff."""
        with self._locked("diff", None, self.lock_wait):
            target, tgt_extras = self._resolve(checkpoint)
            cur = self._scanner.scan()
            raw, counts, changes, kept = self._changes(cur, target, tgt_extras, numstat=True)
            add_patches(self._git, cur.tree, target.tree, changes)
            add_line_counts(changes, counts)
            conflicts = [Conflict(path=os.fsdecode(p), reason=KEPT_IGNORED) for p in kept]
            root = os.fsencode(str(self.work_tree)) + b"/"
            captured = self._scanner.manifest.files
            added = {r.path: r for r in raw if r.status in "AT"}
            for c in changes:
                rel = os.fsencode(c.path)
                if (
                    c.status == "added"
                    and c.kind != "dir"
                    and rel not in captured
                    and os.path.lexists(root + rel)
                ):
                    r = added.get(rel)
                    if r is not None and same_as_target(
                        root + rel, r, perm_for(tgt_extras, c.path, r.new_mode), self.size_cap
                    ):
                        continue  # already what the target has; the restore leaves it so
                    conflicts.append(
                        Conflict(
                            path=c.path,
                            reason="exists but is in no snapshot "
                            "(ignored or over the size cap); would be left",
                        )
                    )
            return Diff(checkpoint=target.id, files=changes, conflicts=conflicts)

    def _changes(self, cur, target, tgt_extras, *, numstat: bool = False):
        """(raw diff, line counts, file changes, kept paths) from the scanned work tree `cur`
        to `target`: what restoring it would change. Paths the target's ignore rules ignore
        would be kept: they are not deletions."""
        raw, counts = raw_diff(self._git, cur.tree, target.tree, numstat=numstat)
        raw, shown, kept = keep_ignored_at_target(
            self._git, raw, cur.extras, target.tree, tgt_extras, self.store_dir / "ignore-check"
        )
        changes = file_changes(
            self._git,
            cur.tree,
            cur.extras,
            target.tree,
            shown,
            raw=raw,
            tree_modes=self._tree_modes,
        )
        return raw, counts, changes, kept

    def would_change(self, checkpoints: list[str]) -> dict[str, list[str] | None]:
        """{checkpoint: the paths `restore(checkpoint)` would change now}, with one scan of the
        work tree for all of them (a listing's FILES column); None for a pruned or unknown one."""
        with self._locked("diff", None, self.lock_wait):
            cur = self._scanner.scan()
            out: dict[str, list[str] | None] = {}
            by_tree: dict[str, list[str]] = {}
            for ref in checkpoints:
                try:
                    target, tgt_extras = self._resolve(ref)
                except CheckpointNotFound:
                    out[ref] = None
                    continue
                if target.tree not in by_tree:
                    changes = self._changes(cur, target, tgt_extras)[2]
                    by_tree[target.tree] = sorted(c.path for c in changes)
                out[ref] = by_tree[target.tree]
            return out

    def restore(
        self, checkpoint: str, *, session_id: str | None = None, meta: dict | None = None
    ) -> RestoreResult:
        """Make the work tree exactly the checkpoint (code only). The state before is
        snapshotted first; `undo_restore()` brings it back. RestoreLocked if another process
        holds the store.

        `meta`: the caller's record of what the restore is part of (JSON-able; the agent puts
        the conversation side of a rewind there). It is in the journal before any file changes
        and stays on the undo stack entry (`restores()`), so that a restore finished by
        `recover()` after a kill can still be completed on the caller's side."""
        with self._locked("restore", session_id, 0.0):
            target, _ = self._resolve(checkpoint)
            pre = self._snapshot(session_id, None, f"before restore to {target.id}", "pre-restore")
            item = {"target": target.id, "pre": pre.id, "at": now_iso()}
            if meta is not None:
                item["meta"] = meta
            stack = self._state()["stack"] + [item]
            stack = stack[-UNDO_DEPTH:]  # the stack pins its checkpoints against prune
            entry = {
                "op": "restore",
                "target": target.id,
                "pre": pre.id,
                "stack_after": stack,
                "pid": os.getpid(),
                "session_id": session_id,
                "started": now_iso(),
            }
            self._journal.begin(entry)
            return self._apply_journal(entry, recovered=False, cur=self._scanner.last_state)

    def undo_restore(self, *, session_id: str | None = None) -> RestoreResult:
        """Bring back the work tree as it was before the last restore (or undo)."""
        with self._locked("undo-restore", session_id, 0.0):
            stack = self._state()["stack"]
            if not stack:
                raise NothingToUndo("no restore to undo")
            top = stack[-1]
            pre = self._snapshot(
                session_id, None, f"before undoing restore to {top['target']}", "pre-undo"
            )
            entry = {
                "op": "undo",
                "target": top["pre"],
                "pre": pre.id,
                "stack_after": stack[:-1],
                "pid": os.getpid(),
                "session_id": session_id,
                "started": now_iso(),
            }
            self._journal.begin(entry)
            return self._apply_journal(entry, recovered=False, cur=self._scanner.last_state)

    def restores(self) -> list[dict]:
        """The stack of restores `undo_restore()` can undo, oldest first: {target, pre, at}
        (and `meta` when the restore was given one)."""
        return list(self._state()["stack"])

    def prune(self, older_than: timedelta) -> PruneResult:
        """Drop checkpoints older than `older_than` (never the current one, nor those the undo
        stack needs) and garbage-collect so the space is freed."""
        with self._locked("prune", None, self.lock_wait):
            before = self.size_bytes()
            cutoff = datetime.now(UTC) - older_than
            state = self._state()
            keep = {s[k] for s in state["stack"] for k in ("target", "pre")}
            if state["head"]:
                keep.add(state["head"]["id"])
            all_cps = self._load_all()
            removed = sorted(
                i for i, (cp, _) in all_cps.items() if cp.created < cutoff and i not in keep
            )
            if removed:
                self._git.run(
                    ["update-ref", "--stdin"],
                    input="".join(f"delete {REF_PREFIX}{i}\n" for i in removed).encode(),
                )
                for i in removed:
                    self._cache.pop(i, None)
            (self._git.git_dir / "index.scan").unlink(missing_ok=True)
            self._git.run(["reflog", "expire", "--expire=now", "--all"])
            self._git.run(["gc", "--prune=now", "--quiet"])
            return PruneResult(
                removed=removed,
                kept=len(all_cps) - len(removed),
                size_before=before,
                size_after=self.size_bytes(),
            )

    def size_bytes(self) -> int:
        """Bytes the store uses on disk (objects, packs, refs, index, metadata)."""
        return self._sizes.total()

    def recover(self) -> RestoreResult | None:
        """Finish a restore that an earlier process did not (killed, crashed). Every public
        method does this first; returns the result, or None when there was nothing to do."""
        with self._locked("recover", None, 0.0, recover=False):
            return self._recover_locked()

    def _exclude_home(self, home: Path) -> None:
        """A GODWIT_HOME inside the project is never captured (nor touched by a restore)."""
        try:
            rel = home.relative_to(self.work_tree)
        except ValueError:
            return
        pattern = "/" + re.sub(r"([\\*?\[\] !#])", r"\\\1", rel.as_posix()) + "/"
        with open(self._git.git_dir / "info" / "exclude", "a") as fh:
            fh.write(f"{pattern}\n")

    # -- locking and recovery ------------------------------------------------------------------

    @contextmanager
    def _locked(self, op: str, session_id: str | None, wait: float, *, recover: bool = True):
        self._lock.acquire(op=op, session_id=session_id, wait=wait)
        try:
            if self._lock.outermost:
                self._scanner.reload_if_changed()
            if recover:
                self._recover_locked()
            yield
        finally:
            self._lock.release()

    def _recover_locked(self) -> RestoreResult | None:
        entry = self._journal.pending()
        if entry is None:
            return None
        return self._apply_journal(entry, recovered=True)

    def _recover_if_free(self) -> None:
        """Read-only calls recover too, unless the restore is still running elsewhere."""
        if self._journal.pending() is not None and not self._lock.is_held_elsewhere():
            try:
                with self._locked("recover", None, 0.0):
                    pass
            except RestoreLocked:
                pass  # taken meanwhile by the process that will finish it; read as it is

    def _apply_journal(self, entry: dict, *, recovered: bool, cur=None) -> RestoreResult:
        """Make the work tree equal the journal's target, then record it and drop the journal.
        Idempotent: after a crash, running it again (from a fresh scan) finishes the job.
        `cur`: the state just scanned by the pre-restore snapshot, if any."""
        target, tgt_extras = self._resolve(entry["target"])
        if cur is None:
            cur = self._scanner.scan()
        applier = Applier(self._git, self.work_tree, self.store_dir)
        raw = applier.apply(
            cur.tree,
            cur.extras,
            set(self._scanner.manifest.files),
            target.tree,
            tgt_extras,
            self._tree_modes,
        )
        changed = file_changes(
            self._git,
            cur.tree,
            cur.extras,
            target.tree,
            applier.target_extras,
            raw=raw,
            tree_modes=self._tree_modes,
        )
        # The shadow index and stat cache now describe the restored tree (what the restore
        # wrote is known, not hashed again).
        self._scanner.scan(known=applier.written)
        state = self._state()
        state["stack"] = entry["stack_after"]
        state["head"] = {"id": target.id, "tree": target.tree, "digest": extras_digest(tgt_extras)}
        write_json(self._state_path, state)
        self._journal.clear()
        meta = (entry["stack_after"] or [{}])[-1].get("meta") if entry["op"] == "restore" else None
        return RestoreResult(
            checkpoint=target.id,
            pre_restore_id=entry["pre"],
            meta=meta,
            undo=entry["op"] == "undo",
            recovered=recovered,
            changed=changed,
            conflicts=applier.conflicts,
            finished=datetime.now(UTC),
        )

    # -- snapshots -----------------------------------------------------------------------------

    def _snapshot(self, session_id, turn, label, reason) -> Checkpoint:
        cur = self._scanner.scan()
        state = self._state()
        head = state["head"]
        if head and head["tree"] == cur.tree and head["digest"] == cur.digest:
            try:
                cp, _ = self._resolve(head["id"], is_head=True)
                return cp.model_copy(update={"unchanged": True})
            except CheckpointNotFound:
                pass  # pruned by hand: take a new one
        prev_tree, prev_extras = EMPTY_TREE, empty_extras()
        if head:
            try:
                prev_tree, prev_extras = head["tree"], self._resolve(head["id"], is_head=True)[1]
            except CheckpointNotFound:
                head = None
        # Line counts diff every changed blob: past line_counts_max changed files (a first
        # snapshot, a mass edit) they are left out (None) to keep snapshots fast.
        few = len(self._scanner.last_changed) <= self.line_counts_max
        raw, counts = raw_diff(self._git, prev_tree, cur.tree, numstat=few)
        if len(raw) > self.line_counts_max:
            counts = {}  # (the head was older than the last scan: same rule, same result)
        changes = file_changes(
            self._git,
            prev_tree,
            prev_extras,
            cur.tree,
            cur.extras,
            raw=raw,
            tree_modes=self._tree_modes,
        )
        total = len(changes)
        add_line_counts(changes, counts)
        listed = changes[: self.files_listed_max]
        meta = {
            "created": datetime.now(UTC).isoformat(),
            "session_id": session_id,
            "turn": turn,
            "label": (label or "")[:4000],
            "reason": reason or "",
            "parent": head["id"] if head else None,
            "files": [c.model_dump(exclude_none=True, exclude_defaults=True) for c in listed],
            "files_changed": total,
            "lines_added": sum(c.added_lines or 0 for c in changes),
            "lines_deleted": sum(c.deleted_lines or 0 for c in changes),
            "skipped": [
                {
                    "path": p,
                    "size": s,
                    "reason": "over size cap" if s > self.size_cap else "unreadable",
                }
                for p, s in cur.extras["skipped"].items()
            ],
            "empty_dirs": len(cur.extras["empty_dirs"]),
            "store_size": self.size_bytes(),
        }
        first = (label or "").strip().splitlines()[0][:72] if (label or "").strip() else ""
        message = f"{_SUBJECT}: {reason or 'snapshot'} {first}\n\n" + json.dumps(
            {"meta": meta, "extras": cur.extras}, sort_keys=True
        )
        commit = self._commit(cur.tree, message)
        cp_id = commit[:12]
        state["head"] = {"id": cp_id, "tree": cur.tree, "digest": cur.digest}
        # Not fsynced: losing it only means the next snapshot compares with an older head. The
        # undo stack, which must not be lost, is written durably by restores.
        write_json(self._state_path, state, durable=False)
        cp = self._parse(commit, cur.tree, message)[0]
        self._cache[cp_id] = (cp, cur.extras)
        return cp

    def _commit(self, tree: str, message: str) -> str:
        """Write the checkpoint's commit (parentless) and its ref; return the commit id.

        Done in-process with GitPython's object database (gitdb) rather than `git commit-tree`
        and `git update-ref`: two processes fewer on every snapshot that changed something."""
        when = int(time.time())
        who = f"Godwit <godwit@localhost> {when} +0000"
        data = f"tree {tree}\nauthor {who}\ncommitter {who}\n\n".encode() + message.encode(
            "utf-8", "backslashreplace"
        )
        commit = self._odb.store(IStream(b"commit", len(data), io.BytesIO(data))).hexsha.decode()
        ref = self._git.git_dir / REF_PREFIX / commit[:12]
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(ref.name + ".lock")
        tmp.write_text(commit + "\n")
        os.replace(tmp, ref)
        return commit

    # -- reading checkpoints -------------------------------------------------------------------

    def _state(self) -> dict:
        return read_json(self._state_path, {"head": None, "stack": []})

    @staticmethod
    def _parse(commit: str, tree: str, message: str) -> tuple[Checkpoint, dict]:
        body = json.loads(message.split("\n\n", 1)[1])
        meta = body["meta"]
        cp = Checkpoint(
            id=commit[:12],
            commit=commit,
            tree=tree,
            created=datetime.fromisoformat(meta["created"]),
            session_id=meta.get("session_id"),
            turn=meta.get("turn"),
            label=meta.get("label", ""),
            reason=meta.get("reason", ""),
            parent=meta.get("parent"),
            files=meta.get("files", []),
            files_changed=meta.get("files_changed", 0),
            lines_added=meta.get("lines_added", 0),
            lines_deleted=meta.get("lines_deleted", 0),
            skipped=[SkippedFile(**s) for s in meta.get("skipped", [])],
            empty_dirs=meta.get("empty_dirs", 0),
            store_size=meta.get("store_size", 0),
        )
        return cp, body["extras"]

    def _load_all(self) -> dict[str, tuple[Checkpoint, dict]]:
        out = self._git.run(
            ["for-each-ref", "--format=%(objectname)%00%(tree)%00%(contents)%00", REF_PREFIX]
        )
        parts = out.decode("utf-8", "surrogateescape").split("\0")
        result = {}
        for i in range(0, len(parts) - 2, 3):
            commit, tree, message = parts[i].lstrip("\n"), parts[i + 1], parts[i + 2]
            cp_id = commit[:12]
            cached = self._cache.get(cp_id)
            if cached is None or cached[0].commit != commit:
                cached = self._parse(commit, tree, message)
                self._cache[cp_id] = cached
            result[cp_id] = cached
        return result

    def _resolve(self, ref: str, *, is_head: bool = False) -> tuple[Checkpoint, dict]:
        ref = ref.strip().lower()
        if is_head and ref in self._cache:
            return self._cache[ref]  # prune never drops the head, so no need to ask git
        all_cps = self._load_all()
        matches = [
            v for k, v in all_cps.items() if k.startswith(ref) or v[0].commit.startswith(ref)
        ]
        if len(matches) == 1 and ref:
            return matches[0]
        raise CheckpointNotFound(ref, ambiguous=[m[0].id for m in matches] if ref else [])

    def _tree_modes(self, tree: str, paths: set[str] | None) -> dict[str, int]:
        """{path: git mode} of the regular files and links of `tree` (only `paths` if given)."""
        if paths is not None and not paths:
            return {}
        args = ["ls-tree", "-r", "-z", "--full-tree", tree]
        if paths is not None and len(paths) <= 200:
            args += ["--", *sorted(paths)]
        out = self._git.run(args)
        result = {}
        for rec in out.split(b"\0"):
            if not rec:
                continue
            head, _, path = rec.partition(b"\t")
            p = os.fsdecode(path)
            if paths is None or p in paths:
                result[p] = int(head.split(b" ", 1)[0], 8)
        return result


class _DirSizes:
    """The store's size without a `du` of thousands of loose objects each time: a directory
    whose mtime (which changes when an entry is added or removed) is unchanged keeps its
    total, and in `objects/xx/` (immutable files) only new names are stat'ed."""

    _RECENT_NS = 100_000_000  # a directory changed this recently may change again unseen

    def __init__(self, root: Path):
        self.root = os.fsencode(str(root))
        # path -> (mtime_ns or None when recent, {name: size}, [subdirectory paths])
        self._cache: dict[bytes, tuple[int | None, dict[bytes, int], list[bytes]]] = {}

    def total(self) -> int:
        return self._dir(self.root, time.time_ns())

    def _dir(self, path: bytes, now: int) -> int:
        try:
            mtime = os.lstat(path).st_mtime_ns
        except FileNotFoundError:
            return 0
        cached = self._cache.get(path)
        if cached is None or cached[0] != mtime:
            immutable = (
                os.path.basename(os.path.dirname(path)) == b"objects"
                and len(os.path.basename(path)) == 2
            )
            old = cached[1] if cached is not None and immutable else {}
            sizes: dict[bytes, int] = {}
            subdirs = []
            with os.scandir(path) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        subdirs.append(e.path)
                    elif e.name in old:
                        sizes[e.name] = old[e.name]
                    else:
                        try:
                            sizes[e.name] = e.stat(follow_symlinks=False).st_size
                        except FileNotFoundError:
                            pass
            cached = (mtime if now - mtime > self._RECENT_NS else None, sizes, subdirs)
            self._cache[path] = cached
        return sum(cached[1].values()) + sum(self._dir(d, now) for d in cached[2])
