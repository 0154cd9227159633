"""File operations that a symbolic link swapped in mid-operation cannot lead elsewhere.

The technique of the memory tool (tools/memory_fs.py), for any folder: the root is opened once,
every folder below it is opened relative to its parent's descriptor with O_NOFOLLOW, and files
are read and written through those descriptors (a write is a temp file + rename, and rename
replaces a name rather than following it). A caller checks a path (permissions, protections)
on its resolved form, then walks the same names here: if any of them became a link since, the
walk fails instead of following it.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathChanged(OSError):
    """A name on the way is (now) a symbolic link or not a folder: nothing was done."""


def _open_dir(name: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, f"{name} is not a folder") from None
            raise PathChanged(e.errno, f"{name} is a symbolic link") from None
        raise


@contextmanager
def tree_dir(root: Path, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of `root/parts...`, each step opened without following a link; missing
    folders are made when `create` (FileNotFoundError otherwise). Closed on exit."""
    fds = [_open_dir(str(root), None)]
    try:
        for name in parts:
            if name in ("", ".", ".."):
                raise PathChanged(errno.EINVAL, f"bad path step {name!r}")
            if create:
                try:
                    os.mkdir(name, 0o777, dir_fd=fds[-1])
                except FileExistsError:
                    pass
            fds.append(_open_dir(name, fds[-1]))
        yield fds[-1]
    finally:
        for fd in fds:
            os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def read_at(dir_fd: int, name: str, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file `name` (not through a link). ValueError past
    `max_bytes` (with the size in args[0]); IsADirectoryError / PathChanged for the rest."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PathChanged(e.errno, f"{name} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, name)
        if not stat.S_ISREG(st.st_mode):
            raise PathChanged(errno.EINVAL, f"{name} is not a regular file")
        if st.st_size > max_bytes:
            raise ValueError(st.st_size)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def replace_at(dir_fd: int, name: str, data: bytes) -> None:
    """Write `name` in the folder `dir_fd` atomically (temp file + rename), keeping the old
    file's permission bits and owner; a link at `name` is replaced, never followed."""
    old = lstat_at(dir_fd, name)
    if old is not None and stat.S_ISDIR(old.st_mode):
        raise IsADirectoryError(errno.EISDIR, name)
    tmp = f".{name[:64]}.{uuid.uuid4().hex[:12]}.godwit-tmp"
    fd = os.open(
        tmp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o666,
        dir_fd=dir_fd,
    )
    try:
        try:
            if old is not None and stat.S_ISREG(old.st_mode):
                os.fchmod(fd, stat.S_IMODE(old.st_mode))
                if old.st_uid != os.getuid() or old.st_gid != os.getgid():
                    try:
                        os.fchown(fd, old.st_uid, old.st_gid)
                    except OSError:
                        pass
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
