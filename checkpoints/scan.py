"""Scanning the work tree into the shadow index: what a snapshot holds.

The set of paths comes from git itself (`ls-files --others --directory --exclude-standard`
against the shadow index), so `.gitignore` at every level and the user's `info/exclude` are
honoured exactly as git honours them. Git never descends into a nested repository it knows
nothing about (it shows `nested/`), but it does descend into any directory that has entries in
the index; so each directory git shows collapsed is listed again from a throwaway copy of the
index that holds one placeholder entry inside it. That captures the files of nested
repositories and submodules, never their `.git`, and finds the empty directories.

Change detection is ours, not git's: one `lstat` per known path (about 40 ms for 20,000 files),
compared on (mode, size, mtime_ns, ctime_ns, inode) with nanosecond precision. Git compares
ctime to the second only, so a `chmod 600` in the second after a snapshot would be lost; and git
keeps only 644/755, while the full permission bits go into the checkpoint's metadata. Only
changed paths are handed to `git update-index`, which hashes them raw (see gitenv) and keeps
the index the tree is written from.

The manifest (our stat cache, kept in memory and in `manifest.bin` with marshal) is always
rebuilt from the index on doubt: if the index file is not the one the manifest last saw, the
index is reset to the manifest's tree.
"""

from __future__ import annotations

import marshal
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .blobs import add_to_index, git_mode
from .extras import extras_digest, make_extras, update_modes
from .gitenv import EMPTY_TREE, ShadowGit

MANIFEST_VERSION = 2
PLACEHOLDER = b".godwit-scan-placeholder"
_EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
# File system timestamps come from a coarse clock (a few ms). A path whose timestamp is this
# close to the scan is "racy": a change right after our lstat could leave it unchanged, so it is
# checked again by content at the next scan.
_RACY_NS = 50_000_000

StatKey = tuple  # (st_mode, st_size, st_mtime_ns, st_ctime_ns, st_ino)


def _is_gitignore(path: bytes) -> bool:
    return path == b".gitignore" or path.endswith(b"/.gitignore")


def _key(st: os.stat_result) -> StatKey:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass
class Manifest:
    """Our record of the last scan (persisted): stat keys, skipped files, collapsed dirs."""

    files: dict[bytes, StatKey] = field(default_factory=dict)
    racy: set[bytes] = field(default_factory=set)
    skipped: dict[bytes, int] = field(default_factory=dict)
    # A directory git shows collapsed although it is known (empty, or only ignored or over-cap
    # content): the stat keys of every directory under it, which of them are empty, and the
    # over-cap files found there. Reused while no key changes.
    collapsed: dict[bytes, dict] = field(default_factory=dict)
    tree: str | None = None
    index_key: tuple | None = None
    exclude_key: tuple | None = None
    # The usual permission bits of plain and executable files (chosen at the first scan), and
    # the files whose bits differ from them: kept up to date path by path.
    defaults: tuple[int, int] | None = None
    modes: dict[bytes, int] = field(default_factory=dict)

    def dumps(self) -> bytes:
        return marshal.dumps(
            {
                "v": MANIFEST_VERSION,
                "files": self.files,
                "racy": list(self.racy),
                "skipped": self.skipped,
                "collapsed": self.collapsed,
                "tree": self.tree,
                "index_key": self.index_key,
                "exclude_key": self.exclude_key,
                "defaults": self.defaults,
                "modes": self.modes,
            }
        )

    @classmethod
    def loads(cls, data: bytes) -> Manifest:
        d = marshal.loads(data)
        if d.get("v") != MANIFEST_VERSION:
            return cls()
        return cls(
            files=d["files"],
            racy=set(d["racy"]),
            skipped=d["skipped"],
            collapsed=d["collapsed"],
            tree=d["tree"],
            index_key=d["index_key"],
            exclude_key=d["exclude_key"],
            defaults=d["defaults"],
            modes=d["modes"],
        )


@dataclass
class ScanState:
    """The state of the work tree as a snapshot sees it: a tree plus what git cannot hold."""

    tree: str
    extras: dict
    """{"file_mode", "exec_mode", "modes": {path: mode}, "empty_dirs": {path: mode},
    "skipped": {path: size}}; paths are str (fsdecode), modes are permission bits."""
    digest: str
    changed: bool
    """False when neither the tree nor the extras can differ from the previous scan's."""


@dataclass
class _Pass:
    """What one scan finds, filled in by its steps."""

    racy_after: int
    """A path whose mtime or ctime is at or after this (ns) is racy."""
    files: dict[bytes, StatKey] = field(default_factory=dict)
    changed: list[bytes] = field(default_factory=list)
    removed: list[bytes] = field(default_factory=list)
    skipped: dict[bytes, int] = field(default_factory=dict)
    racy: set[bytes] = field(default_factory=set)
    now_dirs: list[bytes] = field(default_factory=list)
    """Known paths that became directories, and directories found in the listing."""
    collapsed: dict[bytes, dict] = field(default_factory=dict)
    to_expand: list[bytes] = field(default_factory=list)

    def add(self, rel: bytes, key: StatKey, st: os.stat_result) -> None:
        """Capture `rel` (new or changed) with its stat key."""
        self.files[rel] = key
        self.changed.append(rel)
        if max(st.st_mtime_ns, st.st_ctime_ns) >= self.racy_after:
            self.racy.add(rel)


class Scanner:
    """Keeps the shadow index in step with the work tree; `scan()` returns the current state."""

    def __init__(
        self,
        git: ShadowGit,
        work_tree: Path,
        store_dir: Path,
        size_cap: int,
        exclude_file: Path | None,
    ):
        self.git = git
        self.root = os.fsencode(str(work_tree)) + b"/"
        # (done, total) while many files are stored (CheckpointStore.progress).
        self.progress: Callable[[int, int], None] | None = None
        self.index = git.git_dir / "index"
        self.scan_index = git.git_dir / "index.scan"
        self.path = store_dir / "manifest.bin"
        self.size_cap = size_cap
        self.exclude_file = exclude_file
        self._manifest: Manifest | None = None
        self._file_key: tuple | None = None
        self._last: ScanState | None = None
        self.last_changed: list[bytes] = []

    @property
    def last_state(self) -> ScanState | None:
        """The state the last scan of this object returned (None after a reload)."""
        return self._last

    # -- manifest persistence ------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._last = None
            try:
                self._manifest = Manifest.loads(self.path.read_bytes())
            except (FileNotFoundError, ValueError, EOFError, TypeError, KeyError):
                self._manifest = Manifest()
                self.index.unlink(missing_ok=True)
            self._file_key = self._manifest_key()
        return self._manifest

    def _save(self, m: Manifest) -> None:
        m.index_key = self._index_key()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(m.dumps())
        os.replace(tmp, self.path)
        self._file_key = self._manifest_key()

    def _manifest_key(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def reload_if_changed(self) -> None:
        """Forget the in-memory manifest if another process has written the file since."""
        if self._manifest is not None and self._manifest_key() != self._file_key:
            self.forget()

    def _index_key(self) -> tuple | None:
        try:
            st = os.stat(self.index)
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def forget(self) -> None:
        """Drop the in-memory manifest (another process may have changed the store)."""
        self._manifest = None
        self._last = None

    # -- scanning ------------------------------------------------------------------------------

    def scan(self, known: dict[bytes, tuple] | None = None) -> ScanState:
        """Bring the shadow index up to date with the work tree and return the state.

        `known`: {path: (stat key, git mode, blob sha)} of files just written from the store (by
        a restore); a path whose stat key is still that one is entered without hashing it."""
        m = self.manifest
        self._align_index(m)
        p = _Pass(racy_after=time.time_ns() - _RACY_NS)
        self._dir_cache: dict[bytes, bool] = {}
        # git lists the untracked paths while we lstat the known ones.
        listing = self.git.start(["ls-files", "-z", "-o", "--directory", "--exclude-standard"])
        self._restat_known(m, p)
        entries = [e for e in self.git.finish(listing, ["ls-files"]).split(b"\0") if e]
        exclude_key = self._exclude_key()
        # Ignore rules changed (user's info/exclude, or a .gitignore edited, deleted or new):
        # cached listings of collapsed directories cannot be trusted, captured files may now be
        # ignored.
        rules_changed = exclude_key != m.exclude_key or any(
            _is_gitignore(x) for x in (*p.changed, *p.removed, *entries)
        )
        self._take_listing(entries, m, p, trust_collapsed=not rules_changed)
        if any(_is_gitignore(x) for x in p.changed):  # found inside expanded directories
            rules_changed = True
        if rules_changed and m.files:
            self._drop_now_ignored(p.files, p.changed, p.removed)
        self._leave_out_unreadable(p)
        self.last_changed = p.changed
        if p.changed:
            add_to_index(self.git, self.root, p.changed, p.files, known or {}, self.progress)
        structure_same = (
            not p.changed
            and not p.removed
            and p.skipped == m.skipped
            and p.collapsed.keys() == m.collapsed.keys()
            and not p.to_expand
        )
        if structure_same and self._last is not None and not rules_changed:
            return self._unchanged(m, p)
        return self._write_state(m, p, exclude_key)

    def _align_index(self, m: Manifest) -> None:
        """Make the index the one the manifest describes (after a crash between the two
        writes, or on a first run)."""
        if m.index_key != self._index_key():
            self.git.run(["read-tree", m.tree] if m.tree else ["read-tree", "--empty"])
            self._last = None

    def _restat_known(self, m: Manifest, p: _Pass) -> None:
        """One lstat per path of the last scan: unchanged ones are kept as they are."""
        lstat, root, old_racy = os.lstat, self.root, m.racy
        for rel, old in m.files.items():
            try:
                st = lstat(root + rel)
            except (FileNotFoundError, NotADirectoryError):
                p.removed.append(rel)
                continue
            key = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            if key == old and rel not in old_racy:
                p.files[rel] = key
                continue
            self._classify(rel, st, key, p)

    def _take_listing(
        self, entries: list[bytes], m: Manifest, p: _Pass, trust_collapsed: bool
    ) -> None:
        """Enter what git listed as untracked; list again the directories it collapsed whose
        cached listing cannot be trusted, and those that appeared or emptied."""
        for entry in entries:
            if entry.endswith(b"/"):
                d = entry[:-1]
                cached = m.collapsed.get(d) if trust_collapsed else None
                if cached is not None and self._collapsed_still_valid(cached, p.skipped):
                    p.collapsed[d] = cached
                else:
                    p.to_expand.append(d)
                continue
            self._consider_new(entry, p, p.now_dirs)
        if p.removed:
            self.git.run(
                ["update-index", "-z", "--force-remove", "--stdin"],
                input=b"\0".join(p.removed) + b"\0",
            )
        p.to_expand += p.now_dirs
        if p.removed:
            p.to_expand += self._emptied_dirs(
                p.removed, p.files, set(p.to_expand) | set(p.collapsed)
            )
        if p.to_expand:
            self._expand(p.to_expand, p)

    def _leave_out_unreadable(self, p: _Pass) -> None:
        """A file we may not read would fail the whole git call: leave it out, listed as
        skipped (size <= cap means unreadable); it is tried at every scan."""
        if not p.changed or os.geteuid() == 0:
            return
        bad = {
            x: p.files[x][1]
            for x in p.changed
            if stat.S_ISREG(p.files[x][0]) and not os.access(self.root + x, os.R_OK)
        }
        if bad:
            p.changed = [x for x in p.changed if x not in bad]
            for x in bad:
                del p.files[x]
            p.skipped.update(bad)

    def _unchanged(self, m: Manifest, p: _Pass) -> ScanState:
        """Nothing git could see and no permission bits changed: same tree, same extras."""
        last = self._last
        if p.racy != m.racy:
            m.racy = p.racy
            self._save(m)
        return ScanState(last.tree, last.extras, last.digest, changed=False)

    def _write_state(self, m: Manifest, p: _Pass, exclude_key: tuple | None) -> ScanState:
        """Write the tree, save the new manifest (following `m`) and return the new state."""
        tree = self.git.run(["write-tree"]).decode().strip()
        defaults, modes = update_modes(m.defaults, m.modes, p.files, p.changed, p.removed)
        new = Manifest(
            files=p.files,
            racy=p.racy,
            skipped=p.skipped,
            collapsed=p.collapsed,
            tree=tree,
            exclude_key=exclude_key,
            defaults=defaults,
            modes=modes,
        )
        self._save(new)
        self._manifest = new
        extras = make_extras(new.defaults, new.modes, new.collapsed, new.skipped)
        state = ScanState(tree, extras, extras_digest(extras), changed=True)
        self._last = state
        return state

    def _beyond_symlink(self, rel: bytes) -> bool:
        """True when a parent of `rel` is no longer a real directory (e.g. a symlink now):
        lstat followed it, but git must not, and neither may we."""
        cache = self._dir_cache
        i = rel.find(b"/")
        while i > 0:
            d = rel[:i]
            ok = cache.get(d)
            if ok is None:
                try:
                    ok = stat.S_ISDIR(os.lstat(self.root + d).st_mode)
                except OSError:
                    ok = False
                cache[d] = ok
            if not ok:
                return True
            i = rel.find(b"/", i + 1)
        return False

    def _classify(self, rel: bytes, st: os.stat_result, key: StatKey, p: _Pass) -> None:
        """A known path whose stat changed (or was racy): keep, re-add, skip or drop it."""
        if b"/" in rel and self._beyond_symlink(rel):
            p.removed.append(rel)
            return
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFREG and st.st_size > self.size_cap:
            p.removed.append(rel)
            p.skipped[rel] = st.st_size
            return
        if fmt not in (stat.S_IFREG, stat.S_IFLNK):
            p.removed.append(rel)
            if fmt == stat.S_IFDIR:
                p.now_dirs.append(rel)  # a file replaced by a directory: list what is in it
            return
        p.add(rel, key, st)

    def _consider_new(self, rel: bytes, p: _Pass, dirs_out: list[bytes]) -> None:
        """A path git listed as untracked: capture it, skip it (too large), or, a directory,
        put it in `dirs_out` to be listed."""
        try:
            st = os.lstat(self.root + rel)
        except (FileNotFoundError, NotADirectoryError):
            return  # gone since git listed it
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFREG and st.st_size > self.size_cap:
            p.skipped[rel] = st.st_size
        elif fmt in (stat.S_IFREG, stat.S_IFLNK):
            p.add(rel, _key(st), st)
        elif fmt == stat.S_IFDIR:
            dirs_out.append(rel)

    def _collapsed_still_valid(self, cached: dict, skipped: dict[bytes, int]) -> bool:
        if cached.get("racy"):
            return False
        for d, key in cached["dirs"].items():
            try:
                st = os.lstat(self.root + d)
            except OSError:
                return False
            if (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != key:
                return False
        found = {}
        for f in cached["skipped"]:
            try:
                st = os.lstat(self.root + f)
            except OSError:
                return False
            if not stat.S_ISREG(st.st_mode) or st.st_size <= self.size_cap:
                return False
            found[f] = st.st_size
        skipped.update(found)
        return True

    def _expand(self, dirs: list[bytes], p: _Pass) -> None:
        """List directories git showed collapsed, through placeholder entries in a copy of the
        index (git descends into a directory the index has entries in, nested repos included)."""
        shutil.copyfile(
            self.index, self.scan_index
        ) if self.index.exists() else self.scan_index.unlink(missing_ok=True)
        top_of: dict[bytes, bytes] = {d: d for d in dirs}
        info: dict[bytes, dict] = {}

        def rec_of(d: bytes) -> dict:
            return info.setdefault(
                top_of.setdefault(d, d),
                {"dirs": {}, "empty": [], "skipped": [], "files": 0, "racy": set()},
            )

        pending = list(dirs)
        while pending:
            placeholders = b"".join(
                b"100644 %s\t%s/%s\0" % (_EMPTY_BLOB.encode(), d, PLACEHOLDER) for d in pending
            )
            self.git.run(
                ["update-index", "-z", "--index-info"], input=placeholders, index=self.scan_index
            )
            out = self.git.run(
                [
                    "ls-files",
                    "-z",
                    "-o",
                    "--directory",
                    "--exclude-standard",
                    "--",
                    *(os.fsdecode(d) + "/" for d in pending),
                ],
                index=self.scan_index,
            )
            produced: set[bytes] = set()
            pending_set = set(pending)
            nxt: list[bytes] = []
            for entry in out.split(b"\0"):
                if not entry:
                    continue
                parent = self._owner(entry.rstrip(b"/"), pending_set)
                produced.add(parent)
                rec = rec_of(parent)
                if entry.endswith(b"/"):
                    top_of[entry[:-1]] = top_of[parent]
                    nxt.append(entry[:-1])
                    continue
                before = len(p.changed)
                found_dirs: list[bytes] = []
                self._consider_new(entry, p, found_dirs)
                for d in found_dirs:  # a directory listed as a file: it appeared meanwhile
                    top_of[d] = top_of[parent]
                    nxt.append(d)
                if len(p.changed) > before:
                    rec["files"] += 1
                elif entry in p.skipped:
                    rec["skipped"].append(entry)
            for d in pending:
                try:
                    st = os.lstat(self.root + d)
                except OSError:
                    continue
                rec = rec_of(d)
                rec["dirs"][d] = (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                if max(st.st_mtime_ns, st.st_ctime_ns) >= p.racy_after:
                    rec["racy"].add(d)  # a listing of it cannot be trusted next time
                if d not in produced:
                    rec["empty"].append(d)
            pending = nxt
        for top, rec in info.items():
            if rec["files"] == 0 and not rec["racy"] and top in rec["dirs"]:
                p.collapsed[top] = {
                    "dirs": rec["dirs"],
                    "empty": rec["empty"],
                    "skipped": rec["skipped"],
                }
                continue
            # Holds captured files (git descends into it from now on) or is racy: keep its empty
            # directories, each a record of its own that the next listing checks again.
            for e in rec["empty"]:
                p.collapsed[e] = {
                    "dirs": {e: rec["dirs"][e]},
                    "empty": [e],
                    "skipped": [],
                    "racy": e in rec["racy"],
                }

    def _emptied_dirs(self, removed: list[bytes], files: dict, known: set[bytes]) -> list[bytes]:
        """Directories that lost all their captured files: git does not show them (the index
        still had entries there when it listed), yet they may now be empty."""
        covered: set[bytes] = set()
        for p in files:
            i = p.rfind(b"/")
            while i > 0:
                d = p[:i]
                if d in covered:
                    break
                covered.add(d)
                i = p.rfind(b"/", 0, i)
        found: set[bytes] = set()
        for p in removed:
            i = p.rfind(b"/")
            while i > 0:
                d = p[:i]
                if d in covered or d in found:
                    break
                found.add(d)
                i = p.rfind(b"/", 0, i)
        result = []
        for d in sorted(found):
            parent = d.rsplit(b"/", 1)[0] if b"/" in d else None
            if parent in found or d in known:
                continue  # listed through its parent
            if os.path.isdir(self.root + d) and not os.path.islink(self.root + d):
                result.append(d)
        return result

    @staticmethod
    def _owner(path: bytes, pending: set[bytes]) -> bytes:
        """The pending directory `path` was listed under (its nearest pending ancestor)."""
        while b"/" in path:
            path = path.rsplit(b"/", 1)[0]
            if path in pending:
                return path
        return b""

    def _drop_now_ignored(self, files, changed, removed) -> None:
        """Paths captured before that an ignore rule now covers leave the snapshot."""
        out = self.git.run(["ls-files", "-z", "-c", "-i", "--exclude-standard"])
        gone = [p for p in out.split(b"\0") if p]
        if not gone:
            return
        self.git.run(
            ["update-index", "-z", "--force-remove", "--stdin"], input=b"\0".join(gone) + b"\0"
        )
        gone_set = set(gone)
        for p in gone:
            files.pop(p, None)
        changed[:] = [p for p in changed if p not in gone_set]
        removed.extend(gone)

    def _exclude_key(self) -> tuple | None:
        if self.exclude_file is None:
            return None
        try:
            return _key(os.stat(self.exclude_file))
        except OSError:
            return None

    # -- what git cannot hold ------------------------------------------------------------------


__all__ = ["EMPTY_TREE", "Manifest", "ScanState", "Scanner", "git_mode"]
