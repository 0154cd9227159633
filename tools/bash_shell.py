"""The bash tool's shell process (tools/bash.py): starting, reading, killing, cleaning up.

One `bash --noprofile --norc` per session, in its own process group (inside the sandbox when
one is given: then the group's leader is `bwrap`, and the sandbox's PID namespace holds every
process the commands start). Each command runs as

    { . CMDFILE ; } < /dev/null > FIFO 2>&1 9>&-
    printf '\\n<sentinel> <status> <cwd>\\n' >&9

- its output goes to a FIFO of its own, so what a background job prints later goes to that
  command's FIFO (read and dropped), never into the next command's result;
- the redirections sit on the group, so bash restores them afterwards: `exec > /dev/null`
  silences the rest of that command only;
- the end marker travels on fd 9 (the shell's own stdout), which the command cannot see.

Each shell's folder (`/tmp/godwit-bash-*`) holds an `owner` file (pid and start time of the
Godwit process); a new shell removes the folders of owners that are gone (a SIGKILLed
session's leftovers).
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref

POLL_S = 0.05
KILL_GRACE_S = 1.0
_HEAD_BYTES = 256 * 1024
_TAIL_BYTES = 512 * 1024
_DIR_PREFIX = "godwit-bash-"
_swept = False
_sweep_lock = threading.Lock()


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is still running (zombies don't count).

    A killed orphan stays a zombie until init reaps it, and some containers' PID 1 never does,
    so `killpg(pgid, 0)` alone would keep saying "alive". Linux: read /proc; elsewhere: killpg.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not os.path.isdir("/proc/self"):
        return True  # pragma: no cover - not Linux
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def kill_group(
    pgid: int, proc: subprocess.Popen | None = None, grace: float = KILL_GRACE_S
) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap the shell so it does not keep the group alive as a zombie
        if not group_alive(pgid):
            break
        time.sleep(0.02)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc is not None:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed, should not happen
            pass


# -- the shell folders and their owners -----------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _owner_alive(text: str) -> bool:
    try:
        pid_s, start = text.split()
        pid = int(pid_s)
    except ValueError:
        return False
    if not os.path.isdir("/proc/self"):  # pragma: no cover - not Linux: pid only
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return _start_time(pid) == start


def sweep_stale_dirs(tmp: str | None = None) -> list[str]:
    """Remove this user's shell folders whose owner process is gone; the removed paths."""
    tmp = tmp or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(tmp)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(_DIR_PREFIX):
            continue
        path = os.path.join(tmp, name)
        try:
            st = os.lstat(path)
            if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
                continue
            with open(os.path.join(path, "owner")) as f:
                owner = f.read()
        except OSError:
            continue  # no owner file: not ours to judge
        if not _owner_alive(owner):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _make_dir() -> str:
    global _swept
    with _sweep_lock:
        if not _swept:
            _swept = True
            sweep_stale_dirs()
    d = tempfile.mkdtemp(prefix=_DIR_PREFIX)
    me = os.getpid()
    with open(os.path.join(d, "owner"), "w") as f:
        f.write(f"{me} {_start_time(me) or 0}\n")
    return d


def _cleanup(pgid: int, tmpdir: str, live: list[bool], after: object) -> None:
    """Finaliser: no shell survives its owner (interpreter exit, forgotten close)."""
    if live[0]:
        live[0] = False
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    shutil.rmtree(tmpdir, ignore_errors=True)
    if callable(after):
        after()


class Capture:
    """The output of one command: head and tail kept, the middle counted and dropped."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.cut_at: int | None = None
        self.dropped_chars = 0
        self.dropped_lines = 0

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        if len(self.buf) > _HEAD_BYTES + 2 * _TAIL_BYTES:
            end = len(self.buf) - _TAIL_BYTES
            middle = bytes(self.buf[_HEAD_BYTES:end])
            self.dropped_chars += len(middle.decode("utf-8", "replace"))
            self.dropped_lines += middle.count(b"\n")
            del self.buf[_HEAD_BYTES:end]
            self.cut_at = _HEAD_BYTES


def _watchdog(pgid: int) -> subprocess.Popen | None:
    """A sleeping sentry outside the shell's group: if this process dies without cleaning up
    (kill -9), it kills the whole group, so no command keeps changing the tree behind a
    resumed session. It checks once a second and costs nothing else."""
    script = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; kill -KILL -{pgid} 2>/dev/null"
    )
    try:
        return subprocess.Popen(
            ["sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None


class Shell:
    """A running `bash --noprofile --norc` (optionally under `prefix`, the sandbox's command
    line) and the thread that reads its output. `on_close` runs once the shell is gone."""

    def __init__(
        self,
        cwd: str,
        env: dict[str, str],
        prefix: list[str] | None = None,
        on_close=None,
        make_prefix=None,
    ) -> None:
        self.tmpdir = _make_dir()
        self.cmd_file = os.path.join(self.tmpdir, "command")
        self.last_cwd = cwd
        self.proxy = None  # the sandbox's network proxy (tools/sandbox_proxy.py), if it has one
        self._n = 0
        pass_fds: tuple[int, ...] = ()
        if make_prefix is not None:  # the sandbox needs the folder to show it inside
            prefix, pass_fds = make_prefix(self.tmpdir)
        try:
            self.proc = subprocess.Popen(
                [*(prefix or []), "bash", "--noprofile", "--norc"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                bufsize=0,
                pass_fds=pass_fds,
            )
        except BaseException:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            if callable(on_close):
                on_close()
            raise
        finally:
            for fd in pass_fds:
                os.close(fd)
        self.pgid = self.proc.pid
        assert self.proc.stdin is not None and self.proc.stdout is not None
        # A copy of the output pipe on fd 9 carries the end-of-command marker.
        self.proc.stdin.write(b"exec 9>&1\n")
        self.watchdog = _watchdog(self.pgid)
        self.cond = threading.Condition()
        self.capture = Capture()
        self.control = bytearray()
        self.eof = False
        self.dead = False
        self.run_lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._main_fd = self.proc.stdout.fileno()
        os.set_blocking(self._main_fd, False)
        self._sel.register(self._main_fd, selectors.EVENT_READ, "main")
        self._current: int | None = None
        self._keep_w: int | None = None
        self._fifo: str | None = None
        self._live = [
            True
        ]  # cleared once the group is killed, so a finaliser never signals a reused id
        self._finalizer = weakref.finalize(
            self, _cleanup, self.pgid, self.tmpdir, self._live, on_close
        )
        self.reader = threading.Thread(
            target=self._read, name=f"bash-reader-{self.pgid}", daemon=True
        )
        self.reader.start()

    # -- reading -------------------------------------------------------------------------------

    def _read(self) -> None:
        while True:
            try:
                events = self._sel.select(timeout=0.5)
            except (OSError, ValueError):
                events = []
                if self.dead:
                    return
            with self.cond:
                for key, _ in events:
                    fd, role = key.fd, key.data
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if role == "main":
                        if not chunk:
                            self.eof = True
                            self._sel.unregister(fd)
                            self.cond.notify_all()
                            return
                        self.control += chunk
                    elif fd == self._current:
                        if chunk:
                            self.capture.feed(chunk)
                    elif not chunk:  # an earlier command's FIFO: its last writer is gone
                        self._sel.unregister(fd)
                        os.close(fd)
                    # else: late output of an earlier command's background job, dropped
                self.cond.notify_all()

    def drain_current(self) -> None:
        """Read what the finished command left in its FIFO (call with `cond` held)."""
        if self._current is None:
            return
        while True:
            try:
                chunk = os.read(self._current, 65536)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            self.capture.feed(chunk)

    def new_output(self) -> str:
        """A fresh FIFO for the next command, the previous one retired; its path."""
        self._n += 1
        path = os.path.join(self.tmpdir, f"out{self._n}")
        os.mkfifo(path, 0o600)
        r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # Our own write end keeps the FIFO from reading as ended before bash opens it.
        w = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with self.cond:
            self._retire()
            self._current, self._keep_w, self._fifo = r, w, path
            self.capture = Capture()
            self.control.clear()
            self._sel.register(r, selectors.EVENT_READ, "out")
        return path

    def _retire(self) -> None:
        if self._keep_w is not None:
            os.close(self._keep_w)  # EOF once the last background writer is gone
            self._keep_w = None
        self._current = None  # the reader now drops what it reads there
        if self._fifo is not None:
            try:
                os.unlink(self._fifo)
            except OSError:
                pass
            self._fifo = None

    # -- lifecycle -----------------------------------------------------------------------------

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def kill(self) -> None:
        """Kill the whole process group; wait briefly for the reader to finish."""
        self.dead = True
        if self._live[0]:
            kill_group(self.pgid, self.proc)
            self._live[0] = False
        self.reader.join(timeout=1.0)
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        if not self.reader.is_alive():  # never close an fd another thread is still reading
            with self.cond:
                self._retire()
                for key in list(self._sel.get_map().values()):
                    self._sel.unregister(key.fd)
                    if key.data != "main":
                        os.close(key.fd)
                self._sel.close()
            try:
                if self.proc.stdout is not None:
                    self.proc.stdout.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._live[0]:
            self.kill()
        self._finalizer()
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()
            self.watchdog.wait()


_Q_PLAIN = re.compile(r"(?:[^\\']|\\.)*")


def decode_q(text: str) -> str | None:
    """The path printed by bash's `printf %q`, when it is in the plain backslash form."""
    if text.startswith("$'") or not _Q_PLAIN.fullmatch(text):
        return None
    return re.sub(r"\\(.)", r"\1", text)
