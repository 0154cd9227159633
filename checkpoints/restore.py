"""Making the work tree equal a checkpoint, touching only what must change.

The plan is the tree diff between the current state (just scanned) and the target, plus the
permission bits and empty directories of the metadata. Applying it is idempotent: run again on
a half-restored tree (after a SIGKILL) it rescans and finishes the job.

What is never touched: paths that are in neither state's snapshot. A restore does not write
over, nor delete, an ignored file, an over-cap file, or anything inside a `.git`; when one is in
the way, the path is reported as a conflict and left alone. "Ignored" means under either
state's rules: a path the current snapshot holds (because the current `.gitignore` files do not
ignore it) but that the target's `.gitignore` files ignore was invisible to the target, not
"created since"; it is kept, not deleted (`ignored_at_target`). Directories are only ever removed
with `rmdir` (when empty), never recursively. A path whose parent is a symbolic link is never
written through.

Test hooks (for the test suite only; never set them in real use):
  GODWIT_CHECKPOINTS_TEST_KILL_AFTER=N   the restoring process SIGKILLs itself after N file
                                         operations (deterministic crash point);
  GODWIT_CHECKPOINTS_TEST_PAUSE_AFTER=N  after N operations it creates `<store>/test-paused`
                                         and waits (up to 60 s) until that file is removed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import stat
import threading
import time
from pathlib import Path

from .changes import RawChange, perm_for, raw_diff
from .errors import GitFailed
from .gitenv import ShadowGit
from .models import Conflict

KILL_ENV = "GODWIT_CHECKPOINTS_TEST_KILL_AFTER"
KEPT_IGNORED = "ignored at the checkpoint: kept"
PAUSE_ENV = "GODWIT_CHECKPOINTS_TEST_PAUSE_AFTER"


def _in_git_dir(rel: bytes) -> bool:
    """Belt and braces: git never stores such paths, and a restore never touches them."""
    return any(part.lower() == b".git" for part in rel.split(b"/"))


_TOP = b":(top)"


def _is_gitignore(path: bytes) -> bool:
    return path == b".gitignore" or path.endswith(b"/.gitignore")


def ignored_at_target(
    git: ShadowGit,
    raw: list[RawChange],
    tgt_tree: str,
    scratch: Path,
    dirs: set[bytes] = frozenset(),
) -> set[bytes]:
    """The paths a restore to `tgt_tree` would delete (status D in `raw`, the diff current ->
    target, and the empty directories `dirs`) that the target's ignore rules ignore: its
    `.gitignore` files as they are in the target tree, plus the user's `info/exclude` and the
    store's own exclude.

    Nothing in the work tree is read or written: the target's `.gitignore` blobs (and `dirs`,
    so that `name/` patterns see directories) are written into `scratch` (a directory of the
    store, emptied first and removed after) and `git check-ignore --no-index` is asked with
    that directory as the work tree. When no `.gitignore` differs between the two trees, the
    rules are the current ones, which by construction ignore nothing the current snapshot
    holds: no git call at all."""
    asked = [r.path for r in raw if r.status == "D"] + sorted(dirs)
    if not asked or not any(_is_gitignore(r.path) for r in raw):
        return set()
    out = git.run(["ls-tree", "-r", "-z", "--full-tree", tgt_tree])
    ignores: list[tuple[bytes, str]] = []
    for rec in out.split(b"\0"):
        head, _, path = rec.partition(b"\t")
        if not path or not _is_gitignore(path) or _in_git_dir(path):
            continue
        mode, kind, sha = head.split(b" ")
        if kind == b"blob" and mode in (b"100644", b"100755"):  # git ignores linked ones
            ignores.append((path, sha.decode()))
    shutil.rmtree(scratch, ignore_errors=True)  # a leftover of a killed process
    scratch.mkdir(parents=True)
    try:
        root = os.fsencode(str(scratch))
        for (path, _), data in zip(ignores, _Blobs(git).stream([s for _, s in ignores])):
            dest = root + b"/" + path
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as fh:
                fh.write(data)
        for d in dirs:
            try:
                os.makedirs(root + b"/" + d, exist_ok=True)
            except OSError:
                pass  # a .gitignore file in the way (absurd); then not seen as a directory
        # check-ignore refuses literal pathspecs; ":(top)" (the one magic it takes) keeps a
        # name starting with ":" a plain name. It echoes the paths as given.
        args = ["check-ignore", "--no-index", "-z", "--stdin"]
        handle = git.start(
            args,
            extra_env={"GIT_WORK_TREE": str(scratch), "GIT_LITERAL_PATHSPECS": "0"},
            stdin=True,
        )
        out, err = handle.proc.communicate(b"".join(_TOP + p + b"\0" for p in asked))
        if handle.proc.returncode not in (0, 1):  # 1: nothing ignored
            raise GitFailed(args, handle.proc.returncode, err.decode("utf-8", "replace"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {p.removeprefix(_TOP) for p in out.split(b"\0") if p}


def keep_ignored_at_target(
    git: ShadowGit,
    raw: list[RawChange],
    cur_extras: dict,
    tgt_tree: str,
    tgt_extras: dict,
    scratch: Path,
) -> tuple[list[RawChange], dict, list[bytes]]:
    """The restore plan less what the target's ignore rules ignore (`ignored_at_target`):
    (the raw changes without those deletions, the target's extras with those empty
    directories added as they are now, the kept paths sorted)."""
    gone = {os.fsencode(d) for d in cur_extras["empty_dirs"] if d not in tgt_extras["empty_dirs"]}
    kept = ignored_at_target(git, raw, tgt_tree, scratch, gone)
    if not kept:
        return raw, tgt_extras, []
    raw = [r for r in raw if r.path not in kept]
    dirs = dict(tgt_extras["empty_dirs"])
    for d in kept & gone:
        dirs[os.fsdecode(d)] = cur_extras["empty_dirs"][os.fsdecode(d)]
    return raw, {**tgt_extras, "empty_dirs": dirs}, sorted(kept)


def same_as_target(path: bytes, r: RawChange, perm: int, limit: int) -> bool:
    """True when the file or link at `path` already is the target's entry (blob and bits).
    A file larger than `limit` bytes is not read (False)."""
    try:
        st = os.lstat(path)
        if st.st_size > limit:
            return False
        if r.new_mode == 0o120000:
            if not stat.S_ISLNK(st.st_mode):
                return False
            data = os.readlink(path)
        else:
            if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != perm:
                return False
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError:
        return False
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == r.new_sha


class _Blobs:
    """Streams blobs out of one `git cat-file --batch` process: the requests are fed by a
    thread, so there is no round trip per file."""

    def __init__(self, git: ShadowGit):
        self._git = git

    def stream(self, shas: list[str]):
        if not shas:
            return
        handle = self._git.start(["cat-file", "--batch"], stdin=True)
        proc = handle.proc

        def feed() -> None:
            try:
                proc.stdin.write(b"".join(s.encode() + b"\n" for s in shas))
                proc.stdin.close()
            except BrokenPipeError:
                pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            for _ in shas:
                header = proc.stdout.readline().split()
                if len(header) != 3:
                    raise GitFailed(["cat-file", "--batch"], -1, f"bad answer {header!r}")
                data = proc.stdout.read(int(header[2]))
                proc.stdout.read(1)
                yield data
        finally:
            feeder.join()
            proc.stdout.close()
            proc.wait()


class Applier:
    """Applies one restore: current state -> target state."""

    def __init__(self, git: ShadowGit, work_tree: Path, store_dir: Path):
        self.git = git
        self.root = os.fsencode(str(work_tree))
        self.store_dir = store_dir
        self.conflicts: list[Conflict] = []
        self._ops = 0
        self._kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
        self._pause_after = int(os.environ.get(PAUSE_ENV, "0") or 0)
        self._dir_ok: dict[bytes, bool] = {}
        self.target_extras: dict | None = None
        """The target's extras plus the empty directories kept as ignored at the target."""
        self.written: dict[bytes, tuple] = {}
        """{path: (stat key, git mode, sha)} of the files written, for the rescan after."""

    # -- public --------------------------------------------------------------------------------

    def apply(
        self,
        cur_tree: str,
        cur_extras: dict,
        captured: set[bytes],
        tgt_tree: str,
        tgt_extras: dict,
        tree_modes,
    ) -> list[RawChange]:
        """Make the work tree equal the target; `captured` = paths of the current snapshot.
        Returns the changes applied (the tree diff less the paths kept as ignored at the
        target, which are in `conflicts`)."""
        raw = raw_diff(self.git, cur_tree, tgt_tree)[0]
        # 0. What the target's ignore rules ignore was invisible to it: kept, not deleted
        # (files and empty directories; the latter count as part of the target from here on).
        raw, tgt_extras, kept = keep_ignored_at_target(
            self.git, raw, cur_extras, tgt_tree, tgt_extras, self.store_dir / "ignore-check"
        )
        self.target_extras = tgt_extras
        for p in kept:
            self._conflict(p, KEPT_IGNORED)
        deletes = [r for r in raw if r.status in "DT"]
        writes = [
            r for r in raw if r.status in "AT" or (r.status == "M" and r.old_sha != r.new_sha)
        ]
        mode_only = [r for r in raw if r.status == "M" and r.old_sha == r.new_sha]
        deleted_paths = {r.path for r in deletes}

        # 1. Remove what the target does not have (deepest first), then directories emptied.
        for r in sorted(deletes, key=lambda r: r.path, reverse=True):
            self._delete(r.path)
        keep = self._target_dirs(tgt_extras)
        parents = {p.rsplit(b"/", 1)[0] for p in deleted_paths if b"/" in p}
        parents |= {
            os.fsencode(d) for d in cur_extras["empty_dirs"] if d not in tgt_extras["empty_dirs"]
        }
        self._prune_dirs(parents, keep)

        # 2. Write what is new or different, from the shadow repository's blobs.
        writes.sort(key=lambda r: r.path)
        for r, data in zip(writes, _Blobs(self.git).stream([r.new_sha for r in writes])):
            overwrite = r.path in captured and r.path not in deleted_paths
            self._write(r, data, overwrite, perm_for(tgt_extras, os.fsdecode(r.path), r.new_mode))

        # 3. Permission bits on files whose content did not change.
        written = {r.path for r in writes}
        paths = {os.fsencode(p) for p in set(cur_extras["modes"]) | set(tgt_extras["modes"])}
        paths |= {r.path for r in mode_only}
        if (cur_extras["file_mode"], cur_extras["exec_mode"]) != (
            tgt_extras["file_mode"],
            tgt_extras["exec_mode"],
        ):
            paths = None
        for rel, gm in tree_modes(
            tgt_tree, None if paths is None else {os.fsdecode(p) for p in paths}
        ).items():
            relb = os.fsencode(rel)
            if relb in written or gm == 0o120000:
                continue
            self._chmod(relb, perm_for(tgt_extras, rel, gm))

        # 4. Empty directories of the target.
        for d, mode in sorted(tgt_extras["empty_dirs"].items()):
            self._mkdir_exact(os.fsencode(d), mode)
        return raw

    # -- operations ----------------------------------------------------------------------------

    def _tick(self) -> None:
        self._ops += 1
        if self._kill_after and self._ops >= self._kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if self._pause_after and self._ops == self._pause_after:
            marker = self.store_dir / "test-paused"
            marker.write_text(str(os.getpid()))
            deadline = time.monotonic() + 60
            while marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)

    def _abs(self, rel: bytes) -> bytes:
        return self.root + b"/" + rel

    def _parents_ok(self, rel: bytes, create: bool) -> bool:
        """True when every parent of `rel` is a real directory (creating missing ones if asked);
        a parent that is a file or a symbolic link is someone else's: a conflict."""
        parts = rel.split(b"/")[:-1]
        cur = b""
        for part in parts:
            cur = cur + b"/" + part if cur else part
            if self._dir_ok.get(cur):
                continue
            try:
                st = os.lstat(self._abs(cur))
            except FileNotFoundError:
                if not create:
                    return False
                self._guard_write(cur, lambda p=cur: os.mkdir(self._abs(p), 0o755))
                self._tick()
                self._dir_ok[cur] = True
                continue
            if not stat.S_ISDIR(st.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a file"
                self._conflict(
                    rel,
                    f"{os.fsdecode(cur)} is {what} that is in no snapshot "
                    "(ignored or over the size cap); left as it is",
                )
                return False
            self._dir_ok[cur] = True
        return True

    def _delete(self, rel: bytes) -> None:
        if _in_git_dir(rel) or not self._parents_ok(rel, create=False):
            return
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            self._conflict(rel, "is a directory now, with content in no snapshot; left as it is")
            return
        self._guard_write(rel, lambda: os.unlink(path))
        self._tick()

    def _prune_dirs(self, dirs: set[bytes], keep: set[bytes]) -> None:
        """rmdir directories (and their emptied parents) that the target does not have."""
        todo = set()
        for d in dirs:
            while d:
                todo.add(d)
                d = d.rsplit(b"/", 1)[0] if b"/" in d else b""
        for d in sorted(todo, key=lambda p: p.count(b"/"), reverse=True):
            if d in keep or _in_git_dir(d):
                continue
            try:
                self._guard_write(d, lambda d=d: os.rmdir(self._abs(d)))
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR):
                    continue
                raise
            self._dir_ok.pop(d, None)
            self._tick()

    def _write(self, r: RawChange, data: bytes, overwrite: bool, perm: int) -> None:
        rel = r.path
        if _in_git_dir(rel) or not self._parents_ok(rel, create=True):
            return
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                try:
                    self._guard_write(rel, lambda: os.rmdir(path))
                except OSError:
                    self._conflict(
                        rel, "a directory with content in no snapshot is in the way; left as it is"
                    )
                    return
                self._dir_ok.pop(rel, None)
            elif not overwrite:
                if same_as_target(path, r, perm, len(data)):
                    return  # an ignored file that already is what the target has
                self._conflict(
                    rel,
                    "exists but is in no snapshot (ignored or over the size cap); left as it is",
                )
                return
            else:
                self._guard_write(rel, lambda: os.unlink(path))
        if r.new_mode == 0o120000:
            self._guard_write(rel, lambda: os.symlink(data, path))
            st = os.lstat(path)
        else:

            def create() -> os.stat_result:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fchmod(fd, perm)
                    return os.fstat(fd)
                finally:
                    os.close(fd)

            st = self._guard_write(rel, create)
        self.written[rel] = (
            (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
            r.new_mode,
            r.new_sha,
        )
        self._tick()

    def _chmod(self, rel: bytes, perm: int) -> None:
        if not self._parents_ok(rel, create=False):
            return
        try:
            st = os.lstat(self._abs(rel))
        except FileNotFoundError:
            return
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != perm:
            os.chmod(self._abs(rel), perm)
            self._tick()

    def _mkdir_exact(self, rel: bytes, mode: int) -> None:
        if not self._parents_ok(rel, create=True):
            return
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._guard_write(rel, lambda: os.mkdir(path, 0o700))
            os.chmod(path, mode)
            self._tick()
            return
        if not stat.S_ISDIR(st.st_mode):
            self._conflict(
                rel,
                "should be an empty directory but something in no snapshot is there; left as it is",
            )
        elif stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            self._tick()

    def _guard_write(self, rel: bytes, fn) -> None:
        """Run fn; if the parent directory is read-only (and we are not root), open it for the
        operation and put its mode back afterwards."""
        try:
            return fn()
        except PermissionError:
            parent = self._abs(rel).rsplit(b"/", 1)[0]
            mode = stat.S_IMODE(os.lstat(parent).st_mode)
            os.chmod(parent, mode | 0o700)
            try:
                return fn()
            finally:
                os.chmod(parent, mode)

    def _conflict(self, rel: bytes, reason: str) -> None:
        self.conflicts.append(Conflict(path=os.fsdecode(rel), reason=reason))

    @staticmethod
    def _target_dirs(tgt_extras: dict) -> set[bytes]:
        keep = set()
        for d in tgt_extras["empty_dirs"]:
            d = os.fsencode(d)
            while d:
                keep.add(d)
                d = d.rsplit(b"/", 1)[0] if b"/" in d else b""
        return keep
