"""Putting changed files into the shadow repository and its index, raw (no filters)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable

from .errors import GitFailed
from .gitenv import ShadowGit

# From this many changed files on, store them through parallel fast-import processes.
_BULK_MIN = 64


def git_mode(st_mode: int) -> int:
    """The mode git records for this file: 0o120000, 0o100755 or 0o100644."""
    if stat.S_ISLNK(st_mode):
        return 0o120000
    return 0o100755 if st_mode & 0o100 else 0o100644


# Told (files stored so far, files to store) while a large snapshot is stored.
Progress = Callable[[int, int], None]
PROGRESS_EVERY = 500


class _Counter:
    """Files stored across the worker threads; reports every PROGRESS_EVERY files and at the end."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress, self.done = total, progress, 0
        self.lock = threading.Lock()

    def tick(self) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.done += 1
            done = self.done
        if done % PROGRESS_EVERY == 0 or done == self.total:
            self.progress(done, self.total)


def add_to_index(
    git: ShadowGit,
    root: bytes,
    paths: list[bytes],
    files: dict[bytes, tuple],
    known: dict[bytes, tuple],
    progress: Progress | None = None,
) -> None:
    """Hash `paths` into the shadow repository and its index, raw (no filters).

    A few go through `update-index --add`, which hashes them itself. Many (a first
    snapshot, a big change) are read here and streamed into `git fast-import` processes,
    one per core, which write one pack each instead of thousands of loose objects (file
    creation is what costs most on a slow disk); they enter the index by `--index-info`.
    `progress(done, total)` is told how far the bulk store is (from its worker threads)."""
    lines = []
    if known:
        unknown = []
        for p in paths:
            k = known.get(p)
            if k is not None and k[0] == files[p]:
                lines.append(b"%o %s\t%s\0" % (k[1], k[2].encode(), p))
            else:
                unknown.append(p)
        paths = unknown
    if len(paths) >= _BULK_MIN:
        lines += _bulk_store(git, root, paths, files, progress)
        paths = []
    if lines:
        git.run(["update-index", "-z", "--index-info"], input=b"".join(lines))
    if paths:
        git.run(
            ["update-index", "-z", "--add", "--remove", "--replace", "--stdin"],
            input=b"\0".join(paths) + b"\0",
        )


def _bulk_store(
    git: ShadowGit,
    root: bytes,
    paths: list[bytes],
    files: dict[bytes, tuple],
    progress: Progress | None = None,
) -> list[bytes]:
    workers = max(1, min(os.cpu_count() or 1, 4))
    counter = _Counter(len(paths), progress)
    chunks = [paths[i::workers] for i in range(workers)]
    results: list[list[bytes]] = [[] for _ in chunks]
    errors: list[BaseException] = []
    args = ["fast-import", "--quiet", "--depth=0"]

    def work(i: int) -> None:
        # git computes the blob ids; it reports them through a marks file at the end.
        marks = git.git_dir / f"fast-import-{i}.marks"
        handle = git.start([*args, f"--export-marks={marks}"], stdin=True)
        proc = handle.proc
        sent: list[bytes] = []
        try:
            write = proc.stdin.write
            for p in chunks[i]:
                path = root + p
                try:
                    if stat.S_ISLNK(files[p][0]):
                        data = os.readlink(path)
                    else:
                        with open(path, "rb", buffering=0) as fh:
                            data = fh.read()
                except OSError:
                    continue  # gone or changed type since the lstat: next scan sees it
                sent.append(p)
                counter.tick()
                write(b"blob\nmark :%d\ndata %d\n" % (len(sent), len(data)))
                write(data)
                write(b"\n")
            proc.stdin.close()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)
        err = proc.stderr.read()
        if proc.wait() != 0:
            errors.append(GitFailed(args, proc.returncode, err.decode("utf-8", "replace")))
            return
        shas = {}
        for line in marks.read_bytes().splitlines():
            mark, sha = line.split(b" ")
            shas[int(mark[1:])] = sha
        marks.unlink()
        results[i] = [
            b"%o %s\t%s\0" % (git_mode(files[p][0]), shas[n], p) for n, p in enumerate(sent, 1)
        ]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [line for chunk in results for line in chunk]
