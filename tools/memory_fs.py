"""The memory tool's safety layer (tools/memory.py): which paths are allowed, and file-system
operations that cannot be led outside the store by a link.

- Path rules (point 1 of the security notes in tools/memory.py): `parse_memory_path` turns a
  `/memories/...` path into a list of names, or refuses it with a worded ToolError before any
  file-system call; `show` turns the names back into the path the model sees.
- fd-relative operations (points 2, 3 and the size limits of 4): `MemoryFS`, a mixin of MemoryTool, opens the root and
  each folder link-free relative to its parent's fd, and reads, writes (temp file + rename),
  measures and deletes through those fds. Between each check and its use it calls the tool's
  `_race_hook`, where tests swap a symlink in. (rename's no-overwrite primitive, renameat2 with
  its fallback, stays in tools/memory.py.)
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from pydantic import BaseModel

from ._common import ToolError


class MemoryConfig(BaseModel):
    """Limits of one memory store."""

    max_file_bytes: int = 1_000_000
    max_total_bytes: int = 50_000_000
    max_view_chars: int = 16_000
    max_view_lines: int = 2_000
    max_depth: int = 16


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SAFE_NAME = re.compile(r"[A-Za-z0-9 ._\-+,=@]+")
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ._-+,=@/")
PREFIX = "/memories"


def _char_name(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'control character')})"


def parse_memory_path(path: str | None, *, max_depth: int = 16, what: str = "path") -> list[str]:
    """The names under /memories that `path` designates; ToolError (worded) if it is not allowed."""
    if path is None or path == "":
        raise ToolError(
            f"Parameter {what} is required (a path under /memories, e.g. /memories/notes.md)."
        )
    shown = repr(path)
    if "\x00" in path:
        raise ToolError(f"The {what} {shown} contains a NUL byte; it is refused.")
    if "\\" in path:
        raise ToolError(
            f"The {what} {shown} contains a backslash; use '/' between folder names (backslashes are refused)."
        )
    if "%" in path:
        raise ToolError(
            f"The {what} {shown} contains '%': percent-encoded paths are not decoded and are refused; "
            "write the path plainly, e.g. /memories/notes.md."
        )
    for ch in path:
        if ch not in _SAFE_CHARS:
            raise ToolError(
                f"The {what} {shown} contains the character {_char_name(ch)}. Memory paths may use only "
                "ASCII letters, digits, spaces and . _ - + , = @ in names separated by '/'."
            )
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        raise ToolError(
            f"The {what} {shown} is outside the memory directory: memory paths must start with /memories/."
        )
    names = [n for n in path[len(PREFIX) :].split("/") if n != ""]
    for name in names:
        if name in (".", ".."):
            raise ToolError(
                f"The {what} {shown} contains a '{name}' segment; relative segments are not allowed in memory paths."
            )
        if name.startswith("."):
            raise ToolError(
                f"The {what} {shown} has a name starting with '.' ({name!r}); memory names may not start with a dot."
            )
        if name != name.strip(" "):
            raise ToolError(
                f"The {what} {shown} has a name that starts or ends with a space ({name!r})."
            )
        if len(name.encode()) > 255 or not _SAFE_NAME.fullmatch(name):
            raise ToolError(
                f"The {what} {shown} has an invalid name {name!r} (at most 255 characters)."
            )
    if len(names) > max_depth:
        raise ToolError(
            f"The {what} {shown} is {len(names)} levels deep; memory paths may be at most {max_depth} levels deep."
        )
    return names


def show(names: list[str]) -> str:
    return PREFIX + "".join("/" + n for n in names)


class MemoryFS:
    """Link-free, fd-relative file operations on the store at `root`, within `config`'s limits.

    Mixed into MemoryTool, which provides `root`, `config` and `_race_hook`.
    """

    root: Path
    config: MemoryConfig
    _race_hook: Callable[[int, str], None]

    def _open_root(self, stack: ExitStack) -> int:
        try:
            if not os.path.lexists(self.root):
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                os.chmod(self.root, 0o700)
        except OSError as e:
            raise ToolError(f"The memory directory could not be created: {e.strerror}.") from None
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ToolError(
                    "The memory directory is a symbolic link or not a folder; refusing to use it."
                ) from None
            raise ToolError(f"The memory directory could not be opened: {e.strerror}.") from None
        stack.callback(os.close, fd)
        return fd

    @staticmethod
    def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _open_subdir(self, dir_fd: int, name: str, shown: str) -> int:
        self._race_hook(dir_fd, name)
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                st = self._lstat(dir_fd, name)
                if st is not None and stat.S_ISLNK(st.st_mode):
                    raise ToolError(
                        f"{shown} is a symbolic link; memory paths may not go through links."
                    ) from None
                raise ToolError(f"{shown} is not a directory.") from None
            if e.errno == errno.ENOENT:
                raise ToolError(f"The path {shown} does not exist.") from None
            raise

    def _dir(
        self, stack: ExitStack, root_fd: int, names: list[str], *, create: bool, target: str
    ) -> int:
        """An fd of the folder /memories/<names>, opened link-free from the root."""
        fd = root_fd
        for i, name in enumerate(names):
            here = show(names[: i + 1])
            st = self._lstat(fd, name)
            made = False
            if st is None:
                if not create:
                    raise ToolError(f"The path {target} does not exist.")
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                    made = True
                except FileExistsError:
                    pass
            elif stat.S_ISLNK(st.st_mode):
                raise ToolError(
                    f"{here} is a symbolic link; memory paths may not go through links."
                )
            elif not stat.S_ISDIR(st.st_mode):
                consequence = "cannot be created" if create else "does not exist"
                raise ToolError(f"{here} is a file, not a directory, so {target} {consequence}.")
            nfd = self._open_subdir(fd, name, here)
            stack.callback(os.close, nfd)
            if made:
                os.fchmod(nfd, 0o700)  # whatever the umask
            fd = nfd
        return fd

    def _read(self, dir_fd: int, name: str, shown: str) -> tuple[str, int]:
        """The text of a regular file (and its size)."""
        st = self._lstat(dir_fd, name)
        if st is None:
            raise ToolError(f"The path {shown} does not exist.")
        if stat.S_ISLNK(st.st_mode):
            raise ToolError(f"{shown} is a symbolic link; links are not followed in memory.")
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"The path {shown} is a directory; this command needs a file.")
        self._race_hook(dir_fd, name)
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
            )
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise ToolError(
                    f"{shown} is a symbolic link; links are not followed in memory."
                ) from None
            if e.errno == errno.ENOENT:
                raise ToolError(f"The path {shown} does not exist.") from None
            raise
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                raise ToolError(f"{shown} is not a regular file.")
            if fst.st_nlink > 1:
                raise ToolError(
                    f"{shown} has {fst.st_nlink} hard links (it may be linked from outside the memory "
                    "directory), so it is not read or edited; delete it or overwrite it with create."
                )
            if fst.st_size > self.config.max_file_bytes:
                raise ToolError(
                    f"{shown} is {fst.st_size} bytes, over the {self.config.max_file_bytes}-byte limit of a memory file."
                )
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if b"\0" in data:
            raise ToolError(f"{shown} is a binary file; memory files are text.")
        try:
            return data.decode("utf-8"), len(data)
        except UnicodeDecodeError:
            raise ToolError(f"{shown} is not UTF-8 text.") from None

    def _tree_bytes(self, fd: int) -> int:
        """Bytes of the regular files under the directory `fd` (links are not followed)."""
        total = 0
        for name in os.listdir(fd):
            st = self._lstat(fd, name)
            if st is None:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    total += self._tree_bytes(sub)
                finally:
                    os.close(sub)
        return total

    def _write(
        self, root_fd: int, dir_fd: int, name: str, text: str, shown: str, old_size: int
    ) -> None:
        data = text.encode("utf-8")
        cap = self.config.max_file_bytes
        if len(data) > cap:
            raise ToolError(
                f"{shown} would be {len(data)} bytes; a memory file may hold at most {cap} bytes. Keep it shorter or split it. Nothing was written."
            )
        total = self._tree_bytes(root_fd) - old_size + len(data)
        if total > self.config.max_total_bytes:
            raise ToolError(
                f"The memory store would hold {total} bytes, over its limit of {self.config.max_total_bytes} bytes; "
                "delete or shorten memory files first. Nothing was written."
            )
        tmp = f".tmp-{uuid.uuid4().hex}"
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            self._race_hook(dir_fd, name)
            st = self._lstat(dir_fd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise ToolError(f"The path {shown} is a directory.")
            # rename() replaces the name itself: a link swapped in here is replaced, not followed.
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
        os.fsync(dir_fd)

    def _rmtree(self, parent_fd: int, name: str, shown: str) -> None:
        fd = self._open_subdir(parent_fd, name, shown)
        try:
            for child in os.listdir(fd):
                st = self._lstat(fd, child)
                if st is None:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    self._rmtree(fd, child, f"{shown}/{child}")
                else:
                    os.unlink(child, dir_fd=fd)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=parent_fd)
