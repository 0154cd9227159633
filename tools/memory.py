"""`memory`: a folder of notes that outlives the session (Anthropic's memory_20250818).

The model addresses everything as `/memories/...`; the tool maps that onto a root folder given
at construction (see `memory_root`). Commands: view, create, str_replace, insert, delete,
rename, with the parameters of memory_20250818.

Security (every path must stay inside the root, whatever the model or a planted link says):

1. The path text. A path must be `/memories` or start with `/memories/`. Each `/`-separated
   name may use only ASCII letters, digits, space and `. _ - + , = @`; it may not start with `.`
   (so `.` and `..` are impossible, hidden files and our temp files are unreachable) nor start
   or end with a space, and is at most 255 bytes. Everything else is refused before any file
   system call: NUL bytes, backslashes, `%` (percent-encoding is never decoded, so `%2e%2e%2f`
   and double encodings are refused outright), control characters and every non-ASCII
   character (fullwidth `．．／`, one-dot leader `․`, division slash `∕`, ... ). Refusing all of
   non-ASCII is simpler and safer than NFKC-normalising and comparing. At most 16 levels.
2. The file system. Nothing is resolved by path: from an fd of the root, each folder is opened
   with O_DIRECTORY|O_NOFOLLOW relative to its parent's fd, files with O_NOFOLLOW, and every
   operation (stat, mkdir, unlink, rename, link) is dir_fd-relative without following links. A
   symlink anywhere in the path is refused with a message (checked with lstat first), and if one
   is swapped in between that check and the use, the O_NOFOLLOW open fails instead of following
   it. Writes go to a temp file in the same folder and are renamed over the name, so a link or a
   hard link at the name is replaced, never written through.
3. Hard links: a file in the store with more than one link may be a hard link planted from
   outside (the kernel does not say where the other names are), so it is not read or edited
   (st_nlink > 1 is refused); it can be deleted or overwritten with create (rename replaces the
   name; the other inode is untouched). Hard links to files on other file systems cannot exist.
4. The root itself cannot be deleted or renamed; rename never overwrites (renameat2
   RENAME_NOREPLACE via ctypes; where that is missing: link + unlink for files, and a
   check-then-rename with a small race window for folders); a file may hold at most
   `max_file_bytes` and the store `max_total_bytes` (MemoryConfig). Folders are created 0700,
   files 0600; writes are atomic (temp file, fsync, rename, fsync of the folder).

This module holds the tool, its configuration and input model, and the six commands (with
rename's no-overwrite primitive); the path rules (1) and the fd-relative operations (2, 3 and
the limits of 4) are in tools/memory_fs.py.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import stat
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from ._common import (
    BaseTool,
    ToolError,
    ToolInput,
    human_size,
    insert_at,
    ok,
    replace_once,
    snippet,
    split_lines,
    view_lines,
)
from .base import ToolContext, ToolResult
from .memory_fs import _DIR_FLAGS, PREFIX, MemoryConfig, MemoryFS, parse_memory_path, show

# PREFIX, parse_memory_path and show are re-exported: they were importable from here before
# the split.
__all__ = [
    "MEMORY_SYSTEM_PROMPT",
    "PREFIX",
    "MemoryConfig",
    "MemoryInput",
    "MemoryTool",
    "memory_root",
    "parse_memory_path",
    "show",
]

MEMORY_SYSTEM_PROMPT = """\
You have a memory folder, /memories, reached with the `memory` tool. Its files stay when this \
conversation ends, so they are how you learn from earlier sessions and hand over to later ones.
- Before starting work, view /memories and read what is relevant: earlier sessions may have left \
progress notes, decisions and facts about this project.
- While you work, keep it current: what you have done and what is left, decisions and why, facts \
you had to dig for, mistakes not to repeat. Write as you go: your context may be cut at any time \
and anything not written down is lost.
- Keep it tidy: a few well-named files, updated in place (str_replace, insert); delete what is \
stale or wrong instead of piling up new files.
- Memory is for knowledge, not for copies of code or long logs, and never for secrets (keys, \
passwords, tokens)."""

RENAME_NOREPLACE = 1


def memory_root(home: Path, project: Path | None) -> Path:
    """The store for a project: HOME/memories/<slug>-<hash>; `project=None` = HOME/memories/global.

    The slug is the folder name, lower-cased, runs of other characters turned into `-`; the hash
    is the first 10 hex digits of sha256 of the project's absolute (resolved) path, so two
    projects with the same folder name get different stores.
    """
    base = Path(home) / "memories"
    if project is None:
        return base / "global"
    absolute = Path(project).expanduser().resolve()
    slug = re.sub(r"[^a-z0-9]+", "-", absolute.name.lower()).strip("-")[:40] or "root"
    digest = hashlib.sha256(os.fsencode(str(absolute))).hexdigest()[:10]
    return base / f"{slug}-{digest}"


def _load_renameat2() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


# renameat2 and the rename fallback stay in this module: tests set tools.memory._renameat2 to
# None to exercise the fallback.
_renameat2 = _load_renameat2()


class MemoryInput(ToolInput):
    command: Literal["view", "create", "str_replace", "insert", "delete", "rename"] = Field(
        description="view, create, str_replace, insert, delete or rename"
    )
    path: str | None = Field(
        None, description="The file or folder, e.g. /memories/notes.md (all commands but rename)"
    )
    view_range: list[int] | None = Field(
        None, description="view: [start, end] lines, 1-based; end -1 = to the end"
    )
    file_text: str | None = Field(None, description="create: the content of the file")
    old_str: str | None = Field(
        None, description="str_replace: the exact text to replace (must occur once)"
    )
    new_str: str | None = Field(None, description="str_replace: the replacement text")
    insert_line: int | None = Field(
        None, description="insert: the line after which to insert (0 = at the top)"
    )
    insert_text: str | None = Field(None, description="insert: the text to insert")
    old_path: str | None = Field(None, description="rename: the current path")
    new_path: str | None = Field(None, description="rename: the new path (must not exist yet)")


class MemoryTool(BaseTool, MemoryFS):
    name: ClassVar[str] = "memory"
    input_model = MemoryInput
    DESCRIPTION = (
        "Your persistent memory: files under /memories that remain between sessions. Commands: "
        "view (a folder lists its files two levels deep with sizes; a file shows numbered lines, "
        "view_range optional), create (path, file_text; replaces an existing file), str_replace "
        "(path, old_str, new_str; old_str must occur exactly once), insert (path, insert_line, "
        "insert_text; 0 = top), delete (path; a folder with its content), rename (old_path, "
        "new_path; never overwrites). Every path starts with /memories/."
    )

    def __init__(self, root: Path, config: MemoryConfig | None = None) -> None:
        root = Path(root).expanduser()
        # The parents are trusted configuration: resolve them. The root itself must not be a link.
        self.root = Path(os.path.realpath(root.parent)) / root.name
        self.config = config or MemoryConfig()
        self._lock = threading.Lock()

    def anthropic_spec(self) -> dict[str, Any]:
        return {"type": "memory_20250818", "name": self.name}

    # Memory lives under GODWIT_HOME, not in the work tree: its writes need no checkpoint.
    writes_work_tree = False

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return isinstance(args, dict) and args.get("command") == "view"

    def _race_hook(self, dir_fd: int, name: str) -> None:
        """Runs between the check of a path component and its use. A no-op; tests patch it to
        swap a symlink in at exactly that moment and show that the use does not follow it."""

    # -- commands ------------------------------------------------------------------------------

    def _run(self, a: MemoryInput, ctx: ToolContext) -> ToolResult:
        with self._lock, ExitStack() as stack:
            try:
                return getattr(self, f"_cmd_{a.command}")(a, stack)
            except PermissionError as e:
                raise ToolError(f"Permission denied: {e.strerror}.") from None
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise ToolError("The disk is full; nothing was written.") from None
                raise

    def _path(self, p: str | None, what: str = "path") -> list[str]:
        return parse_memory_path(p, max_depth=self.config.max_depth, what=what)

    def _cmd_view(self, a: MemoryInput, stack: ExitStack) -> ToolResult:
        names = self._path(a.path)
        shown = show(names)
        root_fd = self._open_root(stack)
        if not names:
            if a.view_range is not None:
                raise ToolError(f"view_range only applies to files; {shown} is a directory.")
            return ok(self._listing(root_fd, shown))
        dfd = self._dir(stack, root_fd, names[:-1], create=False, target=shown)
        st = self._lstat(dfd, names[-1])
        if st is None:
            raise ToolError(f"The path {shown} does not exist.")
        if stat.S_ISDIR(st.st_mode):
            if a.view_range is not None:
                raise ToolError(f"view_range only applies to files; {shown} is a directory.")
            sub = self._open_subdir(dfd, names[-1], shown)
            stack.callback(os.close, sub)
            return ok(self._listing(sub, shown))
        text, _ = self._read(dfd, names[-1], shown)
        body = view_lines(
            split_lines(text),
            a.view_range,
            shown,
            max_chars=self.config.max_view_chars,
            max_lines=self.config.max_view_lines,
        )
        return ok(f"Here's the content of {shown} with line numbers:\n{body}")

    def _listing(self, dir_fd: int, shown: str) -> str:
        rows: list[str] = []

        def walk(fd: int, prefix: str, depth: int) -> None:
            for name in sorted(os.listdir(fd)):
                if name.startswith("."):
                    continue
                st = self._lstat(fd, name)
                if st is None:
                    continue
                here = f"{prefix}/{name}"
                if stat.S_ISLNK(st.st_mode):
                    rows.append(f"link\t{here} (symbolic link, not followed)")
                elif stat.S_ISDIR(st.st_mode):
                    try:
                        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        continue
                    try:
                        rows.append(f"{human_size(self._tree_bytes(sub))}\t{here}/")
                        if depth < 2:
                            walk(sub, here, depth + 1)
                    finally:
                        os.close(sub)
                elif stat.S_ISREG(st.st_mode):
                    rows.append(f"{human_size(st.st_size)}\t{here}")

        walk(dir_fd, shown, 1)
        head = f"Here are the files and directories up to 2 levels deep in {shown}, excluding hidden items:"
        body = f"{human_size(self._tree_bytes(dir_fd))}\t{shown}/"
        if rows:
            body += "\n" + "\n".join(rows)
        else:
            body += "\n(empty)"
        return f"{head}\n{body}"

    def _cmd_create(self, a: MemoryInput, stack: ExitStack) -> ToolResult:
        names = self._path(a.path)
        shown = show(names)
        if a.file_text is None:
            raise ToolError("Parameter file_text is required for command create.")
        if not names:
            raise ToolError(
                "/memories is a directory; give a file path such as /memories/notes.md."
            )
        root_fd = self._open_root(stack)
        dfd = self._dir(stack, root_fd, names[:-1], create=True, target=shown)
        st = self._lstat(dfd, names[-1])
        old_size = 0
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                raise ToolError(
                    f"{shown} is a symbolic link; refusing to write through it. Delete it first."
                )
            if stat.S_ISDIR(st.st_mode):
                raise ToolError(f"The path {shown} is a directory; create needs a file path.")
            old_size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        self._write(root_fd, dfd, names[-1], a.file_text, shown, old_size)
        if st is not None:
            return ok(f"File {shown} overwritten.")
        return ok(f"File created successfully at: {shown}")

    def _cmd_str_replace(self, a: MemoryInput, stack: ExitStack) -> ToolResult:
        names = self._path(a.path)
        shown = show(names)
        if a.old_str is None:
            raise ToolError("Parameter old_str is required for command str_replace.")
        if not names:
            raise ToolError("/memories is a directory; str_replace needs a file.")
        root_fd = self._open_root(stack)
        dfd = self._dir(stack, root_fd, names[:-1], create=False, target=shown)
        text, size = self._read(dfd, names[-1], shown)
        new_text, first, last = replace_once(text, a.old_str, a.new_str or "", shown)
        self._write(root_fd, dfd, names[-1], new_text, shown, size)
        return ok(
            f"The memory file {shown} has been edited. The changed part, with line numbers:\n{snippet(new_text, first, last, 2)}"
        )

    def _cmd_insert(self, a: MemoryInput, stack: ExitStack) -> ToolResult:
        names = self._path(a.path)
        shown = show(names)
        if a.insert_line is None:
            raise ToolError(
                "Parameter insert_line is required for command insert (0 inserts at the top)."
            )
        if a.insert_text is None:
            raise ToolError("Parameter insert_text is required for command insert.")
        if not names:
            raise ToolError("/memories is a directory; insert needs a file.")
        root_fd = self._open_root(stack)
        dfd = self._dir(stack, root_fd, names[:-1], create=False, target=shown)
        text, size = self._read(dfd, names[-1], shown)
        new_text, first, last = insert_at(text, a.insert_line, a.insert_text, shown)
        self._write(root_fd, dfd, names[-1], new_text, shown, size)
        return ok(
            f"The memory file {shown} has been edited. The inserted lines, with line numbers:\n{snippet(new_text, first, last, 2)}"
        )

    def _cmd_delete(self, a: MemoryInput, stack: ExitStack) -> ToolResult:
        names = self._path(a.path)
        shown = show(names)
        if not names:
            raise ToolError(
                "The /memories directory itself cannot be deleted; delete the files in it one by one."
            )
        root_fd = self._open_root(stack)
        dfd = self._dir(stack, root_fd, names[:-1], create=False, target=shown)
        st = self._lstat(dfd, names[-1])
        if st is None:
            raise ToolError(f"The path {shown} does not exist.")
        if stat.S_ISDIR(st.st_mode):
            self._rmtree(dfd, names[-1], shown)
        else:
            self._race_hook(dfd, names[-1])
            try:
                os.unlink(names[-1], dir_fd=dfd)  # a link is removed itself, never its target
            except IsADirectoryError:
                raise ToolError(f"{shown} changed while it was being deleted; try again.") from None
        os.fsync(dfd)
        return ok(f"Successfully deleted {shown}")

    def _cmd_rename(self, a: MemoryInput, stack: ExitStack) -> ToolResult:
        old = self._path(a.old_path, "old_path")
        new = self._path(a.new_path, "new_path")
        old_shown, new_shown = show(old), show(new)
        if not old:
            raise ToolError("The /memories directory itself cannot be renamed.")
        if not new:
            raise ToolError(
                "The destination /memories already exists; give a new file or folder path under it."
            )
        if new == old:
            raise ToolError(f"old_path and new_path are the same ({old_shown}); nothing to do.")
        if new[: len(old)] == old:
            raise ToolError(f"Cannot move {old_shown} into itself ({new_shown}).")
        root_fd = self._open_root(stack)
        sfd = self._dir(stack, root_fd, old[:-1], create=False, target=old_shown)
        st = self._lstat(sfd, old[-1])
        if st is None:
            raise ToolError(f"The path {old_shown} does not exist.")
        dfd = self._dir(stack, root_fd, new[:-1], create=True, target=new_shown)
        if self._lstat(dfd, new[-1]) is not None:
            raise ToolError(
                f"The destination {new_shown} already exists; rename never overwrites. Delete it first or pick another name."
            )
        self._race_hook(dfd, new[-1])
        try:
            self._rename_noreplace(sfd, old[-1], dfd, new[-1], stat.S_ISDIR(st.st_mode))
        except FileExistsError:
            raise ToolError(
                f"The destination {new_shown} already exists; rename never overwrites."
            ) from None
        except FileNotFoundError:
            raise ToolError(f"The path {old_shown} does not exist.") from None
        os.fsync(sfd)
        os.fsync(dfd)
        return ok(f"Successfully renamed {old_shown} to {new_shown}")

    def _rename_noreplace(self, sfd: int, sname: str, dfd: int, dname: str, is_dir: bool) -> None:
        if _renameat2 is not None:
            if _renameat2(sfd, os.fsencode(sname), dfd, os.fsencode(dname), RENAME_NOREPLACE) == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), dname)
        if not is_dir:
            # link() fails with EEXIST if the name is taken: no window for an overwrite.
            os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            os.unlink(sname, dir_fd=sfd)
            return
        # Folders cannot be hard-linked: check, then rename (a small race window; documented).
        if self._lstat(dfd, dname) is not None:
            raise FileExistsError(errno.EEXIST, "exists", dname)
        os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
